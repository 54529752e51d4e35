"""validation: published measurements shipped with the package, the calculators' answers to them, and
calibration to your own measurements.

``cases/*.yaml`` hold the cases (inputs, the published number, its source and the tolerance the source
states); :mod:`.evaluators` turn a case's inputs into our number by calling the calculators; :mod:`.run`
compares and gives a verdict per case (``llmcalc validate``). Add a case by adding YAML (and, for a new
kind of case, one evaluator). :mod:`.calibrate` fits the training efficiency terms to measured step times
(``llmcalc calibrate``); :mod:`.training_cases` lists the published step-time rows that calibrate the shipped
defaults and those held out. It may import core, model, network, training, inference and rl (it sits above
them, beside report), never a face.
"""
