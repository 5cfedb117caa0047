"""PPO's clipped objective on one state (rlcourse.objectives.clip_objective) and exact epochs on one
batch (surrogate_ascent, ratio_epochs), against the definition, the softmax policy gradient and
finite differences."""

import numpy as np
import pytest

from rlcourse.objectives import RatioEpochs, clip_objective, ratio_epochs, surrogate_ascent
from rlcourse.tabular import kl_divergence

# A grid of ratios that never lands on a kink 1 +- eps for the epsilons below.
RATIOS = np.linspace(0.0, 2.5, 1001) + 1e-4
PI_OLD = np.array([0.2, 0.3, 0.3, 0.2])
REWARDS = np.array([1.0, 0.5, 0.2, 0.0])


def noisy_samples(seed: int, n: int = 12):
    """The notebook's sample sets: actions of pi_old, noisy rewards, advantages against the exact
    baseline."""
    rng = np.random.default_rng(seed)
    actions = rng.choice(4, n, p=PI_OLD)
    return actions, REWARDS[actions] + rng.standard_normal(n) - PI_OLD @ REWARDS


@pytest.fixture(scope="module")
def result():
    return ratio_epochs(
        PI_OLD, REWARDS, *noisy_samples(1), clip_eps=(0.1, 0.2, 0.3), epochs=30, lr=1.0
    )


@pytest.mark.parametrize("eps", [0.1, 0.2, 0.3])
@pytest.mark.parametrize("adv", [2.0, 0.5, -0.5, -2.0])
def test_clip_objective_is_the_definition_and_a_pessimistic_lower_bound(eps, adv):
    objective, gradient, unclipped = clip_objective(RATIOS, adv, eps)
    np.testing.assert_allclose(unclipped, RATIOS * adv)
    np.testing.assert_allclose(
        objective, np.minimum(RATIOS * adv, np.clip(RATIOS, 1 - eps, 1 + eps) * adv)
    )
    assert (objective <= unclipped + 1e-12).all()  # never above TRPO's surrogate
    inside = np.abs(RATIOS - 1) < eps
    np.testing.assert_allclose(objective[inside], unclipped[inside])  # equal inside the band
    # flat (gradient 0) exactly where the ratio has moved past the band in the direction A favours
    flat = RATIOS > 1 + eps if adv > 0 else RATIOS < 1 - eps
    np.testing.assert_array_equal(gradient[flat], 0.0)
    np.testing.assert_allclose(
        gradient[~flat], adv
    )  # elsewhere the gradient of omega A, also on the bad side
    assert flat.any() and (~flat & ~inside).any()


def test_clip_objective_rejects_bad_input_by_name():
    with pytest.raises(ValueError, match="ratio"):
        clip_objective([-0.1, 1.0], 1.0, 0.2)
    with pytest.raises(ValueError, match="advantage"):
        clip_objective([1.0], float("nan"), 0.2)
    with pytest.raises(ValueError, match="clip_eps"):
        clip_objective([1.0], 1.0, 1.5)


def test_first_ascent_step_is_the_policy_gradient_of_the_softmax():
    actions, adv = noisy_samples(0)
    lr = 0.1
    pi1 = surrogate_ascent(PI_OLD, actions, adv, None, epochs=1, lr=lr)[1]
    # d/d theta_b mean_i omega_i A_i at theta = log pi_old: mean_i A_i (1[a_i = b] - pi_old(b))
    grad = np.array([np.mean(adv * ((actions == b) - PI_OLD[b])) for b in range(4)])
    theta = np.log(PI_OLD) + lr * grad
    np.testing.assert_allclose(pi1, np.exp(theta) / np.exp(theta).sum(), rtol=1e-12)
    # at omega = 1 the ratio is inside every band: the clipped objective takes the same first step
    np.testing.assert_allclose(
        surrogate_ascent(PI_OLD, actions, adv, 0.2, epochs=1, lr=lr)[1], pi1, rtol=1e-12
    )


def test_clipped_ascent_stops_while_the_unclipped_one_runs_away():
    # exact advantages: every sample of an action has the same sign, so the clipped run can come to
    # rest
    actions = np.array([3, 2, 1, 3, 2, 2, 0, 1, 2, 1])
    adv = (REWARDS - PI_OLD @ REWARDS)[actions]
    clipped = surrogate_ascent(PI_OLD, actions, adv, 0.2, epochs=40, lr=1.0)
    unclipped = surrogate_ascent(PI_OLD, actions, adv, None, epochs=40, lr=1.0)
    np.testing.assert_allclose(clipped[-1], clipped[10], atol=1e-12)  # no gradient left: it stopped
    ratio = clipped[-1] / PI_OLD
    good = REWARDS - PI_OLD @ REWARDS > 0
    assert (ratio[good] >= 1.2).all() and (
        ratio[~good] <= 0.8
    ).all()  # every sample on its flat side ...
    assert (np.abs(ratio - 1) < 0.35).all()  # ... and not far beyond the band
    best = unclipped[:, 0] / PI_OLD[0]
    assert (np.diff(best) > 0).all() and best[-1] > 4  # the unclipped ratio keeps growing
    np.testing.assert_allclose(clipped.sum(-1), 1.0)
    np.testing.assert_allclose(clipped[0], PI_OLD)


def test_sample_sets_in_a_batch_are_independent():
    sets = [noisy_samples(seed) for seed in range(3)]
    actions, adv = np.stack([a for a, _ in sets]), np.stack([v for _, v in sets])
    batched = surrogate_ascent(PI_OLD, actions, adv, 0.2, epochs=5)
    assert batched.shape == (6, 3, 4)
    for i, (a, v) in enumerate(sets):
        np.testing.assert_allclose(
            batched[:, i], surrogate_ascent(PI_OLD, a, v, 0.2, epochs=5), rtol=1e-12
        )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(pi_old=[0.5, 0.6]), "pi_old"),
        (dict(pi_old=[1.0, 0.0]), "pi_old"),
        (dict(actions=[0, 4]), "actions"),
        (dict(actions=[0.0, 1.0]), "actions"),
        (dict(advantages=[1.0]), "advantages"),
        (dict(clip_eps=0.0), "clip_eps"),
        (dict(epochs=0), "epochs"),
        (dict(lr=-1.0), "lr"),
    ],
)
def test_surrogate_ascent_rejects_bad_input_by_name(kwargs, name):
    args = dict(
        pi_old=[0.5, 0.5], actions=[0, 1], advantages=[1.0, -1.0], clip_eps=0.2, epochs=3, lr=1.0
    )
    with pytest.raises(ValueError, match=name):
        surrogate_ascent(**{**args, **kwargs})


def test_ratio_epochs_keeps_exact_quantities(result):
    assert isinstance(result, RatioEpochs)
    assert result.labels == ["unclipped", "ε = 0.1", "ε = 0.2", "ε = 0.3"]
    assert result.epochs == 30
    assert result.policies.shape == result.ratios.shape == (4, 31, 4)
    np.testing.assert_allclose(result.ratios, result.policies / PI_OLD)
    np.testing.assert_allclose(result.improvement, result.policies @ REWARDS - PI_OLD @ REWARDS)
    np.testing.assert_allclose(result.kl[:, 0], 0.0, atol=1e-15)
    assert (result.kl >= -1e-15).all()
    omega = result.policies[:, :, result.actions] / PI_OLD[result.actions]
    surrogate = (omega * result.advantages).mean(-1)  # the unclipped sample surrogate of every run
    np.testing.assert_allclose(result.estimate, surrogate - result.advantages.mean())
    np.testing.assert_allclose(result.estimate[:, 0], 0.0, atol=1e-15)
    np.testing.assert_allclose(result.objective[0], surrogate[0])
    assert (result.objective[1:] <= surrogate[1:] + 1e-12).all()  # the clipped objective is lower
    np.testing.assert_allclose(result.objective[:, 0], surrogate[:, 0])  # omega = 1 at epoch 0
    assert np.isnan(result.clip_fraction[0]).all()
    for i, eps in enumerate((0.1, 0.2, 0.3), start=1):
        np.testing.assert_allclose(result.clip_fraction[i], (np.abs(omega[i] - 1) > eps).mean(-1))
    assert result.run(None) == 0 and result.run(0.2) == 2
    with pytest.raises(ValueError, match="clip_eps"):
        result.run(0.25)


def test_the_notebooks_sample_set_shows_the_runaway(result):
    # what notebook 07 says about this sample set (seed 1)
    u, c = result.run(None), result.run(0.2)
    assert result.kl[u, -1] > 0.4 and result.kl[c].max() < 0.05
    assert result.improvement[u, -1] < 0 < result.improvement[c, -1]
    assert result.estimate[u, -1] > 0.1  # the unclipped run believes it improved
    assert (
        result.improvement[u].max() > 0.02 and result.improvement[u, 10] > 0
    )  # it did, for a while
    assert (np.abs(np.log(result.ratios[c])) < np.log(1.5)).all()


def test_ratio_epochs_rejects_bad_input_by_name():
    actions, adv = noisy_samples(0)
    with pytest.raises(ValueError, match="rewards"):
        ratio_epochs(PI_OLD, REWARDS[:3], actions, adv)
    with pytest.raises(ValueError, match="actions"):
        ratio_epochs(PI_OLD, REWARDS, np.stack([actions, actions]), np.stack([adv, adv]))


# Definition-based checks added with the move to the math floor.


@pytest.mark.parametrize("adv", [1.5, -0.7])
def test_clip_objective_gradient_is_the_finite_difference_away_from_the_kinks(adv):
    eps, h = 0.2, 1e-6
    objective, gradient, _ = clip_objective(RATIOS, adv, eps)
    up, _, _ = clip_objective(RATIOS + h, adv, eps)
    down, _, _ = clip_objective(np.maximum(RATIOS - h, 0.0), adv, eps)
    away = (np.abs(RATIOS - (1 - eps)) > 1e-3) & (np.abs(RATIOS - (1 + eps)) > 1e-3)
    away &= RATIOS > 1e-3
    np.testing.assert_allclose(gradient[away], ((up - down) / (2 * h))[away], atol=1e-6)


def test_each_ascent_step_follows_the_finite_difference_gradient_of_the_clipped_objective():
    actions, adv = noisy_samples(2)
    eps, lr = 0.2, 0.5
    policies = surrogate_ascent(PI_OLD, actions, adv, eps, epochs=4, lr=lr)

    def objective(theta):
        pi = np.exp(theta - theta.max())
        pi /= pi.sum()
        omega = pi[actions] / PI_OLD[actions]
        return np.minimum(omega * adv, np.clip(omega, 1 - eps, 1 + eps) * adv).mean()

    for k in range(4):
        theta = np.log(policies[k])
        h = 1e-6
        grad = np.array(
            [(objective(theta + h * e) - objective(theta - h * e)) / (2 * h) for e in np.eye(4)]
        )
        step = theta + lr * grad
        want = np.exp(step - step.max()) / np.exp(step - step.max()).sum()
        np.testing.assert_allclose(policies[k + 1], want, atol=1e-7)


def test_ratio_epochs_kl_is_the_tabular_kl(result):
    want = np.array([[kl_divergence(pi_k, PI_OLD) for pi_k in run] for run in result.policies])
    np.testing.assert_allclose(result.kl, want, atol=1e-15)


def test_clip_objective_names_the_bad_ratio():
    with pytest.raises(ValueError, match="-0.5"):
        clip_objective([1.0, -0.5], 1.0, 0.2)
