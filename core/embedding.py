"""2-D embeddings of feature vectors for plotting (t-SNE for small N, PCA for large N)."""

from __future__ import annotations

import numpy as np

__all__ = ["embed_2d", "EMBEDDINGS"]

EMBEDDINGS = ("auto", "tsne", "pca")


def _pca(X: np.ndarray) -> np.ndarray:
    Xc = X - X.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    out = Xc @ vt[:2].T
    signs = np.sign(out[np.abs(out).argmax(axis=0), range(out.shape[1])])  # deterministic sign
    out = out * np.where(signs == 0, 1, signs)
    if out.shape[1] < 2:
        out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    return out


def embed_2d(X: np.ndarray, *, method: str = "auto", tsne_max: int = 3000, seed: int = 0) -> tuple[np.ndarray, str]:
    """Embed X (N, D) into (N, 2); return (xy, algorithm used: "tsne" or "pca").

    ``auto`` uses t-SNE (scikit-learn, PCA-initialised, seeded) up to ``tsne_max`` points and PCA
    above. t-SNE needs at least 5 points; fewer fall back to PCA.
    """
    if method not in EMBEDDINGS:
        raise ValueError(f"method {method!r} is not one of {list(EMBEDDINGS)}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty (N, D) array, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    use_tsne = method == "tsne" or (method == "auto" and X.shape[0] <= tsne_max)
    if not use_tsne or X.shape[0] < 5:
        return _pca(X), "pca"
    from sklearn.manifold import TSNE

    if X.shape[1] > 50:  # the usual speed-up: t-SNE on the top 50 principal components
        Xc = X - X.mean(axis=0, keepdims=True)
        _, _, vt = np.linalg.svd(Xc, full_matrices=False)
        X = Xc @ vt[:50].T
    perplexity = float(min(30.0, max(2.0, (X.shape[0] - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    with _threads_for_small_machines():
        return tsne.fit_transform(X), "tsne"


def _threads_for_small_machines():
    """One OpenMP thread on machines with <= 4 cores.

    Measured on the shared 2-core CPU: t-SNE of 1000 points took 44 s with the default threads
    and 12.5 s with one (the threads wait on each other when the cores are busy).
    """
    import contextlib
    import os

    if (os.cpu_count() or 1) > 4:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)
