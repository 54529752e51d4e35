"""``llmcalc shard … --numpy``: a small, self-checking NumPy program for the sharding exercise.

Ranks are simulated as Python lists of arrays and collectives as sums and concatenations, so the program
runs anywhere in a second. It computes the forward and backward pass of the unsharded block and of every
sharded form, and asserts that outputs and gradients agree to 1e-6 (float64). Sizes that would not run in
a second are scaled down (the TP and DP degrees are kept); the header says so.
"""

from __future__ import annotations

_HELPERS = '''import numpy as np

rng = np.random.default_rng(0)


def all_reduce(xs):  # every rank ends with the sum
    s = sum(xs)
    return [s.copy() for _ in xs]


def all_gather(xs, axis):  # every rank ends with the concatenation
    g = np.concatenate(xs, axis)
    return [g.copy() for _ in xs]


def reduce_scatter(xs, axis):  # rank r ends with slice r of the sum
    return np.split(sum(xs), len(xs), axis)


def split(x, n, axis):
    return np.split(x, n, axis)


def check(name, got, want):
    err = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
    assert err < 1e-6, f"{name}: max error {err:.2e}"
    print(f"{name:9s} forward and backward agree with the unsharded reference (max error {err:.1e})")


def gradcheck(name, loss, x, grad, eps=1e-6):
    """The reference backward itself, against a central finite difference along a random direction."""
    v = rng.standard_normal(x.shape)
    num = (loss(x + eps * v) - loss(x - eps * v)) / (2 * eps)
    ana = float(np.sum(grad * v))
    assert abs(num - ana) <= 1e-6 * max(1.0, abs(ana)), f"{name}: finite difference {num} vs backward {ana}"
    print(f"{name:9s} backward matches a finite difference ({num:.6g} vs {ana:.6g})")

'''

_MLP = '''
X = rng.standard_normal((B, L, D))
W1 = rng.standard_normal((D, F)) / D**0.5
W2 = rng.standard_normal((F, D)) / F**0.5
dY = rng.standard_normal((B, L, D))  # the gradient arriving from above

# unsharded: Y = relu(X·W1)·W2 and its backward
Hp = np.einsum("bld,df->blf", X, W1)
H = np.maximum(Hp, 0)
Y = np.einsum("blf,fd->bld", H, W2)
dW2 = np.einsum("blf,bld->fd", H, dY)
dH = np.einsum("bld,fd->blf", dY, W2) * (Hp > 0)
dW1 = np.einsum("bld,blf->df", X, dH)
dX = np.einsum("blf,df->bld", dH, W1)
want = [Y, dW1, dW2, dX]
gradcheck("dX", lambda x: np.sum(np.maximum(x @ W1, 0) @ W2 * dY), X, dX)
gradcheck("dW1", lambda w: np.sum(np.maximum(X @ w, 0) @ W2 * dY), W1, dW1)

# row-sharded: W1 and W2 split by rows, X split along D; all-reduce before the ReLU and after W2
Xs, W1r, W2r = split(X, TP, 2), split(W1, TP, 0), split(W2, TP, 0)
Hp_r = all_reduce([np.einsum("bld,df->blf", x, w) for x, w in zip(Xs, W1r)])
Hs = [split(np.maximum(h, 0), TP, 2)[r] for r, h in enumerate(Hp_r)]
Y_r = all_reduce([np.einsum("blf,fd->bld", h, w) for h, w in zip(Hs, W2r)])
dW2_r = [np.einsum("blf,bld->fd", h, dY) for h in Hs]
dH_r = [g * (hp > 0) for g, hp in zip(all_gather([np.einsum("bld,fd->blf", dY, w) for w in W2r], 2), Hp_r)]
dW1_r = [np.einsum("bld,blf->df", x, g) for x, g in zip(Xs, dH_r)]
dX_r = [np.einsum("blf,df->bld", g, w) for g, w in zip(dH_r, W1r)]
check("row", [Y_r[0], np.concatenate(dW1_r, 0), np.concatenate(dW2_r, 0), np.concatenate(dX_r, 2)], want)

# column-sharded: W1 and W2 split by columns; gather H and Y, reduce-scatter dH, all-reduce dX
W1c, W2c = split(W1, TP, 1), split(W2, TP, 1)
Hp_c = [np.einsum("bld,df->blf", X, w) for w in W1c]
Hf = all_gather([np.maximum(h, 0) for h in Hp_c], 2)
Y_c = all_gather([np.einsum("blf,fd->bld", h, w) for h, w in zip(Hf, W2c)], 2)
dYs = split(dY, TP, 2)
dW2_c = [np.einsum("blf,bld->fd", h, g) for h, g in zip(Hf, dYs)]
dH_c = reduce_scatter([np.einsum("bld,fd->blf", g, w) for g, w in zip(dYs, W2c)], 2)
dH_c = [g * (hp > 0) for g, hp in zip(dH_c, Hp_c)]
dW1_c = [np.einsum("bld,blf->df", X, g) for g in dH_c]
dX_c = all_reduce([np.einsum("blf,df->bld", g, w) for g, w in zip(dH_c, W1c)])
check("column", [Y_c[0], np.concatenate(dW1_c, 1), np.concatenate(dW2_c, 1), dX_c[0]], want)

# column -> row (Megatron): W1 by columns, W2 by rows; one all-reduce forward (g), one backward (f)
Hp_m = [np.einsum("bld,df->blf", X, w) for w in W1c]
H_m = [np.maximum(h, 0) for h in Hp_m]
Y_m = all_reduce([np.einsum("blf,fd->bld", h, w) for h, w in zip(H_m, W2r)])
dW2_m = [np.einsum("blf,bld->fd", h, dY) for h in H_m]
dH_m = [np.einsum("bld,fd->blf", dY, w) * (hp > 0) for w, hp in zip(W2r, Hp_m)]
dW1_m = [np.einsum("bld,blf->df", X, g) for g in dH_m]
dX_m = all_reduce([np.einsum("blf,df->bld", g, w) for g, w in zip(dH_m, W1c)])
check("megatron", [Y_m[0], np.concatenate(dW1_m, 1), np.concatenate(dW2_m, 0), dX_m[0]], want)

# data-parallel: the batch split over DP ranks, weights replicated, weight gradients all-reduced
Xd, dYd = split(X, DP, 0), split(dY, DP, 0)
Hp_d = [np.einsum("bld,df->blf", x, W1) for x in Xd]
Y_d = [np.einsum("blf,fd->bld", np.maximum(h, 0), W2) for h in Hp_d]
dW2_d = all_reduce([np.einsum("blf,bld->fd", np.maximum(h, 0), g) for h, g in zip(Hp_d, dYd)])
dH_d = [np.einsum("bld,fd->blf", g, W2) * (h > 0) for g, h in zip(dYd, Hp_d)]
dW1_d = all_reduce([np.einsum("bld,blf->df", x, g) for x, g in zip(Xd, dH_d)])
dX_d = [np.einsum("blf,df->bld", g, W1) for g in dH_d]
check("data", [np.concatenate(Y_d, 0), dW1_d[0], dW2_d[0], np.concatenate(dX_d, 0)], want)
'''

_ATTN = '''
K = D // H
X = rng.standard_normal((B, L, D))
Wq, Wk, Wv = (rng.standard_normal((D, n, K)) / D**0.5 for n in (H, G, G))
Wo = rng.standard_normal((H, K, D)) / D**0.5
dY = rng.standard_normal((B, L, D))


def attention(X, Wq, Wk, Wv, Wo):
    """Self-attention (M = L, no mask) on the heads these weights hold; returns Y and what backward needs."""
    r = Wq.shape[1] // Wk.shape[1]  # query heads per key/value head (GQA)
    q = np.einsum("bld,dhk->blhk", X, Wq)
    k = np.repeat(np.einsum("bmd,dgk->bmgk", X, Wk), r, axis=2)
    v = np.repeat(np.einsum("bmd,dgk->bmgk", X, Wv), r, axis=2)
    s = np.einsum("blhk,bmhk->bhlm", q, k) / K**0.5
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    a = np.einsum("bhlm,bmhk->blhk", p, v)
    return np.einsum("blhk,hkd->bld", a, Wo), (q, k, v, p, a, r)


def attention_backward(X, Wq, Wk, Wv, Wo, cache, dY):
    q, k, v, p, a, r = cache
    dWo = np.einsum("blhk,bld->hkd", a, dY)
    da = np.einsum("bld,hkd->blhk", dY, Wo)
    dp = np.einsum("blhk,bmhk->bhlm", da, v)
    dv = np.einsum("bhlm,blhk->bmhk", p, da)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True)) / K**0.5
    dq = np.einsum("bhlm,bmhk->blhk", ds, k)
    dk = np.einsum("bhlm,blhk->bmhk", ds, q)
    g = Wk.shape[1]
    dk, dv = (t.reshape(t.shape[0], t.shape[1], g, r, K).sum(3) for t in (dk, dv))  # sum over each group
    dWq = np.einsum("bld,blhk->dhk", X, dq)
    dWk = np.einsum("bmd,bmgk->dgk", X, dk)
    dWv = np.einsum("bmd,bmgk->dgk", X, dv)
    dX = (np.einsum("blhk,dhk->bld", dq, Wq) + np.einsum("bmgk,dgk->bmd", dk, Wk)
          + np.einsum("bmgk,dgk->bmd", dv, Wv))
    return dX, dWq, dWk, dWv, dWo


Y, cache = attention(X, Wq, Wk, Wv, Wo)
want = [Y, *attention_backward(X, Wq, Wk, Wv, Wo, cache, dY)]
gradcheck("dX", lambda x: np.sum(attention(x, Wq, Wk, Wv, Wo)[0] * dY), X, want[1])
gradcheck("dWk", lambda w: np.sum(attention(X, Wq, w, Wv, Wo)[0] * dY), Wk, want[3])
gradcheck("dWv", lambda w: np.sum(attention(X, Wq, Wk, w, Wo)[0] * dY), Wv, want[4])

# heads split over TP ranks (Megatron): Wq, Wk, Wv by heads (columns), Wo by heads (rows)
shards = list(zip(split(Wq, TP, 1), split(Wk, TP, 1), split(Wv, TP, 1), split(Wo, TP, 0)))
outs = [attention(X, *w) for w in shards]
Y_t = all_reduce([y for y, _ in outs])  # g: one all-reduce forward
grads = [attention_backward(X, *w, c, dY) for w, (_, c) in zip(shards, outs)]
dX_t = all_reduce([g[0] for g in grads])  # f: one all-reduce backward
got = [Y_t[0], dX_t[0]] + [np.concatenate([g[i] for g in grads], 1 if i < 4 else 0) for i in (1, 2, 3, 4)]
check("tp", got, want)
'''


def mlp_script(d: int, f: int, batch: int, seq: int, tp: int, dp: int) -> str:
    small = batch * seq * max(d, f) <= 2_000_000
    B, L, D, F = (batch, seq, d, f) if small else (2 * dp, 8, 8 * tp, 16 * tp)
    head = ("# 2-layer ReLU MLP: unsharded vs row-, column-, Megatron- and data-parallel sharding.\n"
            + ("" if small else f"# Scaled down from the exercise (B={batch}, L={seq}, D={d}, F={f}) so it runs in "
                                "a second;\n# TP and DP are kept. Edit the sizes to taste.\n")
            + f"B, L, D, F, TP, DP = {B}, {L}, {D}, {F}, {tp}, {dp}\n")
    return head + _HELPERS + _MLP


def attention_script(d: int, heads: int, kv_heads: int, batch: int, seq: int, tp: int) -> str:
    small = batch * heads * seq * seq <= 2_000_000 and batch * seq * d <= 2_000_000
    r = heads // kv_heads
    B, L, H, G = (batch, seq, heads, kv_heads) if small else (2, 8, tp * min(r, 4), tp)
    D = d if small else H * 4
    head = ("# Attention block: unsharded vs heads split over TP ranks (Megatron), forward and backward.\n"
            + ("" if small else f"# Scaled down from the exercise (B={batch}, L={seq}, D={d}, H={heads}, "
                                f"G={kv_heads}) so it runs\n# in a second; TP is kept. Edit the sizes to taste.\n")
            + f"B, L, D, H, G, TP = {B}, {L}, {D}, {H}, {G}, {tp}\n")
    return head + _HELPERS + _ATTN
