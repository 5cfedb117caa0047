"""A discounted linear-quadratic (LQ) problem on which the deterministic policy gradient
theorem holds exactly.

Slide "Deterministic Policy Gradient Theorem" (Silver et al., 2014, "Deterministic Policy Gradient
Algorithms", ICML):

    grad_theta J(theta)
        = 1/(1 - gamma) E_{S ~ d^mu}[ grad_theta mu_theta(S) grad_a Q^mu(S, a)|_{a = mu_theta(S)} ].

The problem (``LQProblem(A, B, Q, R, Sigma, gamma, Sigma0)``), time steps t = 0, 1, 2, ...::

    S_0 ~ N(0, Sigma0),    A_t = mu_K(S_t) = K S_t,
    R_{t+1} = r(S_t, A_t) = -(S_t' Q S_t + A_t' R A_t),
    S_{t+1} = A S_t + B A_t + W_t,    W_t ~ N(0, Sigma) independent,
    J(K) = E[ sum_t gamma^t R_{t+1} ].

(``Q`` and ``R`` are the cost matrices of LQ control; the Q-function is ``q_values``.) The policy
parameter theta is the gain matrix ``K`` of shape ``(action_dim, state_dim)``. Everything is exact:

- ``V^K(s) = -s' P s - c`` with ``P = (Q + K' R K) + gamma (A + B K)' P (A + B K)`` (a discounted
  Lyapunov equation) and ``c = gamma / (1 - gamma) tr(P Sigma)``;
- ``J(K) = E_{S_0}[V^K(S_0)] = -tr(P Sigma0) - c``;
- ``Q^K(s, a) = r(s, a) + gamma E[V^K(S') | s, a] = -[s; a]' H [s; a] - c`` with
  ``H = [[Q + gamma A'PA, gamma A'PB], [gamma B'PA, R + gamma B'PB]]`` (the constant is the same
  ``c``), so ``grad_a Q^K(s, a) = -2 (gamma B'PA s + (R + gamma B'PB) a)``;
- ``d^mu`` is the *normalised* discounted state distribution, ``d^mu(s) = (1 - gamma) sum_t gamma^t
  p(S_t = s)`` (a probability distribution; this is the convention that goes with the slide's factor
  ``1/(1 - gamma)``). For a linear policy the theorem's integrand ``grad_K mu_K(s) grad_a Q`` is the
  outer product ``grad_a Q^K(s, K s) s'``, linear in ``s s'``, so only the second moment
  ``Sigma_d = E_{S ~ d^mu}[S S']`` is needed: ``Sigma_d = (1 - gamma) X`` with
  ``X = gamma (A + B K) X (A + B K)' + Sigma0 + gamma / (1 - gamma) Sigma``.

Hence the theorem's right-hand side in closed form::

    grad_K J(K) = 1/(1 - gamma) E_{S ~ d^mu}[grad_a Q^K(S, K S) S']
                = -2/(1 - gamma) (gamma B'PA + (R + gamma B'PB) K) Sigma_d,

which ``dpg_gradient`` returns and the tests compare with ``finite_difference_gradient`` of ``J``.
All of this requires ``K`` to be stabilising in the discounted sense,
``sqrt(gamma) * spectral_radius(A + B K) < 1``; otherwise ``J = -inf`` and every method raises.

Checked by ``tests/test_dpg_theorem.py``; meant for the deterministic-policy-gradient
notebook (topic 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LQProblem",
    "solve_discrete_lyapunov",
    "spectral_radius",
    "random_lq",
    "random_stabilising_gain",
]


def _fail(name: str, value, allowed: str) -> None:
    if isinstance(value, np.ndarray):
        value = np.array2string(value, precision=4, separator=", ", max_line_width=10**6).replace(
            "\n", ""
        )
    raise ValueError(f"{name}={value} is not allowed: {name} must be {allowed}")


def spectral_radius(M: np.ndarray) -> float:
    """The largest absolute value of an eigenvalue of the square matrix ``M``."""
    return float(np.max(np.abs(np.linalg.eigvals(M)))) if np.size(M) else 0.0


def solve_discrete_lyapunov(F: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The solution ``X`` of ``X = F X F' + W`` (needs ``spectral_radius(F) < 1``).

    Solved exactly by vectorisation: with row-major ``vec``, ``vec(F X F') = (F kron F) vec(X)``, so
    ``(I - F kron F) vec(X) = vec(W)``, an ``n^2 x n^2`` linear system (tiny for the course's n <=
    3). The result is symmetrised when ``W`` is symmetric.
    """
    F = np.asarray(F, dtype=float)
    W = np.asarray(W, dtype=float)
    n = F.shape[0]
    X = np.linalg.solve(np.eye(n * n) - np.kron(F, F), W.reshape(-1)).reshape(n, n)
    return 0.5 * (X + X.T) if np.allclose(W, W.T) else X


def _check_matrix(name: str, M, shape: tuple, psd: bool = False, pd: bool = False) -> np.ndarray:
    M = np.asarray(M, dtype=float)
    if M.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {M.shape}")
    if not np.isfinite(M).all():
        _fail(name, M, "finite")
    if psd or pd:
        if not np.allclose(M, M.T, rtol=1e-10, atol=1e-12):
            _fail(name, M, "symmetric")
        lo = float(np.linalg.eigvalsh(M).min()) if M.size else 0.0
        if pd and lo <= 0:
            _fail(name, M, f"positive definite (its smallest eigenvalue is {lo:.3g})")
        if psd and lo < -1e-12 * max(1.0, float(np.abs(M).max())):
            _fail(name, M, f"positive semi-definite (its smallest eigenvalue is {lo:.3g})")
        M = 0.5 * (M + M.T)
    return M


@dataclass
class LQProblem:
    """Discounted LQ control with Gaussian noise; see the module docstring for the formulas.

    ``A`` (n, n) and ``B`` (n, m): the dynamics ``S' = A S + B a + W``; ``Q`` (n, n) positive
    semi-definite and ``R`` (m, m) positive definite: the cost, ``r(s, a) = -(s'Qs + a'Ra)``;
    ``Sigma`` (n, n): the covariance of the noise ``W``; ``gamma`` in [0, 1); ``Sigma0`` (n, n): the
    covariance of the initial state ``S_0 ~ N(0, Sigma0)``. A policy is a gain ``K``
    of shape (m, n).
    """

    A: np.ndarray
    B: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    Sigma: np.ndarray
    gamma: float
    Sigma0: np.ndarray

    def __post_init__(self):
        self.A = np.asarray(self.A, dtype=float)
        self.B = np.asarray(self.B, dtype=float)
        if self.A.ndim != 2 or self.A.shape[0] != self.A.shape[1]:
            raise ValueError(f"A must be a square matrix (n, n), got shape {self.A.shape}")
        n = self.A.shape[0]
        if self.B.ndim != 2 or self.B.shape[0] != n:
            raise ValueError(f"B must have shape (n, m) = ({n}, m) to match A, got {self.B.shape}")
        m = self.B.shape[1]
        self.A = _check_matrix("A", self.A, (n, n))
        self.B = _check_matrix("B", self.B, (n, m))
        self.Q = _check_matrix("Q", self.Q, (n, n), psd=True)
        self.R = _check_matrix("R", self.R, (m, m), pd=True)
        self.Sigma = _check_matrix("Sigma", self.Sigma, (n, n), psd=True)
        self.Sigma0 = _check_matrix("Sigma0", self.Sigma0, (n, n), psd=True)
        g = self.gamma
        if (
            isinstance(g, bool)
            or not isinstance(g, (int, float, np.floating, np.integer))
            or not 0.0 <= g < 1.0
        ):
            _fail("gamma", g, "a number in [0, 1)")
        self.gamma = float(g)

    @property
    def state_dim(self) -> int:
        return self.A.shape[0]

    @property
    def action_dim(self) -> int:
        return self.B.shape[1]

    # -- the policy ---------------------------------------------------------------------------

    def closed_loop(self, K: np.ndarray) -> np.ndarray:
        """``A + B K``: the state's dynamics under the policy ``mu_K(s) = K s`` (noise
        left out)."""
        return self.A + self.B @ self.check_gain(K)

    def check_gain(self, K: np.ndarray) -> np.ndarray:
        """``K`` as a float array of shape (m, n); a clear error unless it is stabilising.

        Stabilising (in the discounted sense): ``sqrt(gamma) * spectral_radius(A + B K) < 1``, which
        is what makes the Lyapunov equations for ``P`` and ``Sigma_d`` solvable and ``J(K)`` finite
        for every noise (with full-rank ``Q`` and ``Sigma``, ``J(K) = -inf`` otherwise).
        """
        K = np.asarray(K, dtype=float)
        if K.shape != (self.action_dim, self.state_dim):
            raise ValueError(
                "K must have shape (action_dim, state_dim) = "
                f"{(self.action_dim, self.state_dim)}, got {K.shape}"
            )
        if not np.isfinite(K).all():
            _fail("K", K, "finite")
        rho = np.sqrt(self.gamma) * spectral_radius(self.A + self.B @ K)
        if not rho < 1.0:
            _fail(
                "K",
                K,
                "stabilising, i.e. sqrt(gamma) * spectral_radius(A + B K) < 1, "
                f"but it is {rho:.6g} "
                "(J(K) = -inf: the discounted cost diverges)",
            )
        return K

    def actions(self, K: np.ndarray, s: np.ndarray) -> np.ndarray:
        """``mu_K(s) = K s`` for states ``s`` of shape (..., n)."""
        return np.asarray(s, dtype=float) @ np.asarray(K, dtype=float).T

    def reward(self, s: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``r(s, a) = -(s'Qs + a'Ra)`` for batches ``s`` (..., n) and ``a`` (..., m)."""
        s, a = np.asarray(s, dtype=float), np.asarray(a, dtype=float)
        return -(
            np.einsum("...i,ij,...j->...", s, self.Q, s)
            + np.einsum("...i,ij,...j->...", a, self.R, a)
        )

    # -- exact values -------------------------------------------------------------------------

    def value_matrix(self, K: np.ndarray) -> tuple[np.ndarray, float]:
        """``(P, c)`` with ``V^K(s) = -s'Ps - c``.

        ``P = (Q + K'RK) + gamma (A + BK)' P (A + BK)``, and ``c = gamma / (1 - gamma) tr(P
        Sigma)``: each step's noise adds ``tr(P Sigma)`` to the expected cost from the next step on,
        discounted from t = 1.
        """
        AK = self.closed_loop(K)
        K = np.asarray(K, dtype=float)
        P = solve_discrete_lyapunov(np.sqrt(self.gamma) * AK.T, self.Q + K.T @ self.R @ K)
        c = self.gamma / (1.0 - self.gamma) * float(np.trace(P @ self.Sigma))
        return P, c

    def values(self, K: np.ndarray, s: np.ndarray) -> np.ndarray:
        """``V^K(s) = -s'Ps - c`` for states ``s`` of shape (..., n)."""
        P, c = self.value_matrix(K)
        s = np.asarray(s, dtype=float)
        return -np.einsum("...i,ij,...j->...", s, P, s) - c

    def objective(self, K: np.ndarray) -> float:
        """``J(K) = E_{S_0 ~ N(0, Sigma0)}[V^K(S_0)] = -tr(P Sigma0) - c``."""
        P, c = self.value_matrix(K)
        return -float(np.trace(P @ self.Sigma0)) - c

    def q_matrix(self, K: np.ndarray) -> tuple[np.ndarray, float]:
        """``(H, c)`` with ``Q^K(s, a) = -[s; a]' H [s; a] - c``, H of shape (n + m, n + m).

        From ``Q^K(s, a) = r(s, a) + gamma E[V^K(A s + B a + W)]`` and ``E[W'PW] = tr(P Sigma)``:
        ``H = [[Q + gamma A'PA, gamma A'PB], [gamma B'PA, R + gamma B'PB]]`` and the constant is
        ``gamma (tr(P Sigma) + c) = c``.
        """
        P, c = self.value_matrix(K)
        g, A, B = self.gamma, self.A, self.B
        H = np.block(
            [
                [self.Q + g * A.T @ P @ A, g * A.T @ P @ B],
                [g * B.T @ P @ A, self.R + g * B.T @ P @ B],
            ]
        )
        return 0.5 * (H + H.T), c

    def q_values(self, K: np.ndarray, s: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``Q^K(s, a)`` for batches ``s`` (..., n) and ``a`` (..., m)."""
        H, c = self.q_matrix(K)
        z = _stack(s, a)
        return -np.einsum("...i,ij,...j->...", z, H, z) - c

    def q_action_gradient(self, K: np.ndarray, s: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``grad_a Q^K(s, a) = -2 (gamma B'PA s + (R + gamma B'PB) a)``, shape (..., m)."""
        H, _ = self.q_matrix(K)
        n = self.state_dim
        return -2.0 * _stack(s, a) @ H[n:].T

    # -- the deterministic policy gradient theorem --------------------------------------------

    def state_second_moment(self, K: np.ndarray) -> np.ndarray:
        """``Sigma_d = E_{S ~ d^mu}[S S']`` for the *normalised* discounted state distribution.

        ``d^mu(s) = (1 - gamma) sum_t gamma^t p(S_t = s)``. With ``Sigma_t = E[S_t S_t']``,
        ``Sigma_{t+1} = (A + BK) Sigma_t (A + BK)' + Sigma`` and ``Sigma_0 = Sigma0``, so ``X =
        sum_t gamma^t Sigma_t`` solves ``X = gamma (A + BK) X (A + BK)' + Sigma0 + gamma/(1 - gamma)
        Sigma``, and ``Sigma_d = (1 - gamma) X``. (The mean of ``d^mu`` is 0.)
        """
        AK = self.closed_loop(K)
        g = self.gamma
        X = solve_discrete_lyapunov(np.sqrt(g) * AK, self.Sigma0 + g / (1.0 - g) * self.Sigma)
        return (1.0 - g) * X

    def dpg_integrand(self, K: np.ndarray, s: np.ndarray) -> np.ndarray:
        """``grad_K mu_K(s) grad_a Q^K(s, a)|_{a = K s}`` for states ``s`` (..., n):
        shape (..., m, n).

        ``mu_K(s)_i = sum_j K_ij s_j``, so ``d mu_i / d K_jk = delta_ij s_k`` and the product is the
        outer product ``grad_a Q^K(s, K s) s'``: entry (j, k) is ``dQ/da_j * s_k``.
        """
        s = np.asarray(s, dtype=float)
        g = self.q_action_gradient(K, s, self.actions(K, s))
        return g[..., :, None] * s[..., None, :]

    def dpg_gradient(self, K: np.ndarray) -> np.ndarray:
        """The theorem's right-hand side, exactly: ``1/(1 - gamma) E_{S ~ d^mu}[grad_K mu_K(S)
        grad_a Q^K(S, KS)]``.

        The integrand is ``-2 (gamma B'PA + (R + gamma B'PB) K) S S'``, linear in ``S S'``, so its
        expectation is that matrix times ``Sigma_d = state_second_moment(K)``. Shape (m, n),
        like ``K``.
        """
        K = self.check_gain(K)
        H, _ = self.q_matrix(K)
        n = self.state_dim
        G = -2.0 * (H[n:, :n] + H[n:, n:] @ K)  # grad_a Q^K(s, K s) = G s
        return G @ self.state_second_moment(K) / (1.0 - self.gamma)

    def finite_difference_gradient(self, K: np.ndarray, eps: float = 1e-6) -> np.ndarray:
        """Central differences of ``J``: entry (i, j) is
        ``(J(K + eps E_ij) - J(K - eps E_ij)) / (2 eps)``.

        The error is O(eps^2) from the third derivative plus O(machine epsilon * |J| / eps) from
        rounding. With ``eps = 1e-6`` it stays below about 1e-8 relative on :func:`random_lq`
        problems (``eps = 1e-5`` gives about 1e-6 where ``K`` is large and ``J`` strongly curved;
        the third derivative dominates).
        """
        K = self.check_gain(K)
        if (
            isinstance(eps, bool)
            or not isinstance(eps, (int, float, np.floating))
            or not 0.0 < eps < np.inf
        ):
            _fail("eps", eps, "a positive number")
        grad = np.zeros_like(K)
        for idx in np.ndindex(*K.shape):
            E = np.zeros_like(K)
            E[idx] = eps
            grad[idx] = (self.objective(K + E) - self.objective(K - E)) / (2.0 * eps)
        return grad

    # -- simulation ---------------------------------------------------------------------------

    def sample_episodes(
        self, K: np.ndarray, num_episodes: int, horizon: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Roll ``mu_K`` out for ``horizon`` steps in ``num_episodes`` parallel episodes,
        time first.

        Returns ``states`` S_t (T, N, n), ``actions`` A_t (T, N, m), ``rewards`` R_{t+1} = r(S_t,
        A_t) (T, N) and ``next_states`` S_{t+1} (T, N, n). The problem never terminates; the horizon
        only truncates (the discounted tail left out is about ``gamma^T`` times J).
        """
        K = self.check_gain(K)
        for name, v in (("num_episodes", num_episodes), ("horizon", horizon)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                _fail(name, v, "a positive whole number")
        n, m, N, T = self.state_dim, self.action_dim, int(num_episodes), int(horizon)
        L0 = _sqrt_psd(self.Sigma0)
        L = _sqrt_psd(self.Sigma)
        out = {
            "states": np.empty((T, N, n)),
            "actions": np.empty((T, N, m)),
            "rewards": np.empty((T, N)),
            "next_states": np.empty((T, N, n)),
        }
        s = rng.standard_normal((N, n)) @ L0.T
        for t in range(T):
            a = s @ K.T
            s2 = s @ self.A.T + a @ self.B.T + rng.standard_normal((N, n)) @ L.T
            out["states"][t], out["actions"][t], out["next_states"][t] = s, a, s2
            out["rewards"][t] = self.reward(s, a)
            s = s2
        return out


def _stack(s, a) -> np.ndarray:
    s, a = np.asarray(s, dtype=float), np.asarray(a, dtype=float)
    batch = np.broadcast_shapes(s.shape[:-1], a.shape[:-1])
    return np.concatenate(
        [np.broadcast_to(s, batch + s.shape[-1:]), np.broadcast_to(a, batch + a.shape[-1:])], -1
    )


def _sqrt_psd(M: np.ndarray) -> np.ndarray:
    """A matrix ``L`` with ``L L' = M`` for a positive semi-definite ``M`` (works when
    ``M`` is singular)."""
    w, V = np.linalg.eigh(M)
    return V * np.sqrt(np.clip(w, 0.0, None))


def random_lq(seed: int, state_dim: int = 2, action_dim: int = 1, gamma: float = 0.9) -> LQProblem:
    """A random LQ problem whose open loop is stable: ``spectral_radius(A)`` is drawn
    from [0.5, 0.95].

    So ``K = 0`` is stabilising, and so is every small enough ``K`` (see
    :func:`random_stabilising_gain`). ``Q``, ``R``, ``Sigma`` and ``Sigma0`` are random positive
    definite matrices.
    """
    for name, v, lo, hi in (("state_dim", state_dim, 1, 8), ("action_dim", action_dim, 1, 8)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            _fail(name, v, f"a whole number from {lo} to {hi}")
    rng = np.random.default_rng(seed)
    n, m = int(state_dim), int(action_dim)

    def pd(k: int, scale: float) -> np.ndarray:
        L = rng.standard_normal((k, k))
        return scale * (L @ L.T / k + 0.2 * np.eye(k))

    A = rng.standard_normal((n, n))
    A *= rng.uniform(0.5, 0.95) / spectral_radius(A)
    B = rng.standard_normal((n, m))
    return LQProblem(
        A=A, B=B, Q=pd(n, 1.0), R=pd(m, 1.0), Sigma=pd(n, 0.1), gamma=gamma, Sigma0=pd(n, 1.0)
    )


def random_stabilising_gain(problem: LQProblem, seed: int, max_radius: float = 0.95) -> np.ndarray:
    """A random gain ``K`` with ``sqrt(gamma) * spectral_radius(A + B K) <= max_radius``.

    Draws ``K`` with standard normal entries and halves it until the bound holds; this ends when
    ``sqrt(gamma) * spectral_radius(A) < max_radius`` (true for :func:`random_lq` with the default).
    """
    if not 0.0 < max_radius < 1.0:
        _fail("max_radius", max_radius, "in (0, 1)")
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((problem.action_dim, problem.state_dim))
    sg = np.sqrt(problem.gamma)
    for _ in range(60):
        if sg * spectral_radius(problem.A + problem.B @ K) <= max_radius:
            return K
        K = 0.5 * K
    raise ValueError(
        f"max_radius={max_radius} is not allowed: max_radius must exceed sqrt(gamma) * "
        f"spectral_radius(A) = {sg * spectral_radius(problem.A):.4g}, the open loop's radius"
    )
