"""gradless's envs from Python against Gymnasium's own, step by step and bit for bit."""

import numpy as np
import pytest
import gymnasium
from gymnasium.vector import AutoresetMode

import gradless

# Every id Gymnasium's classic_control module registers.
ENV_IDS = sorted(
    env_id
    for env_id, spec in gymnasium.registry.items()
    if isinstance(spec.entry_point, str) and ".classic_control" in spec.entry_point
)


def test_every_classic_control_id_is_ours():
    assert len(ENV_IDS) == 6
    assert sorted(gradless.ENV_IDS) == ENV_IDS


def gymnasium_vector(env_id, num_envs, mode, **kwargs):
    """Gymnasium's reference: its own envs in a SyncVectorEnv (sub-env i seeded seed + i)."""
    return gymnasium.make_vec(
        env_id,
        num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": mode},
        **kwargs,
    )


def actions_for(space, steps, seed):
    """The same actions for both envs: drawn once, float32 for boxes as the space has them."""
    space.seed(seed)
    return [space.sample() for _ in range(steps)]


def assert_same_step(ours, theirs, step):
    for name, a, b in zip(("obs", "reward", "terminated", "truncated"), ours, theirs):
        assert a.dtype == b.dtype, f"step {step}: {name} dtype {a.dtype} != {b.dtype}"
        np.testing.assert_array_equal(a, b, err_msg=f"step {step}: {name}")


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_trajectories_are_gymnasiums_bit_for_bit(env_id, mode):
    num_envs, steps = 3, 260
    # Short limits so that every run crosses several truncations and restarts.
    ours = gradless.make_vec(env_id, num_envs, autoreset_mode=mode, max_episode_steps=60)
    theirs = gymnasium.wrappers.vector.RecordEpisodeStatistics(
        gymnasium_vector(env_id, num_envs, mode, max_episode_steps=60)
    )
    assert ours.single_observation_space == theirs.single_observation_space
    assert ours.single_action_space == theirs.single_action_space
    assert ours.metadata["autoreset_mode"] == mode
    obs, _ = ours.reset(seed=42)
    ref, _ = theirs.reset(seed=42)
    np.testing.assert_array_equal(obs, ref)
    ended = 0
    for step, action in enumerate(actions_for(theirs.action_space, steps, 7)):
        *mine, my_infos = ours.step(action)
        *ref, ref_infos = theirs.step(action)
        assert_same_step(mine, ref, step)
        assert ("episode" in my_infos) == ("episode" in ref_infos), step
        if "episode" in ref_infos:
            ended += 1
            np.testing.assert_array_equal(my_infos["_episode"], ref_infos["_episode"])
            for key in ("r", "l"):
                got, want = my_infos["episode"][key], ref_infos["episode"][key]
                assert got.dtype == want.dtype, key
                np.testing.assert_array_equal(got, want, err_msg=f"step {step}: {key}")
        if mode == AutoresetMode.SAME_STEP and "final_obs" in ref_infos:
            np.testing.assert_array_equal(my_infos["_final_obs"], ref_infos["_final_obs"])
            for i in np.flatnonzero(ref_infos["_final_obs"]):
                np.testing.assert_array_equal(my_infos["final_obs"][i], ref_infos["final_obs"][i])
    assert ended >= 3


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_threads_split_the_envs_without_changing_what_they_do(mode):
    one = gradless.make_vec("Acrobot-v1", 7, autoreset_mode=mode, max_episode_steps=40)
    three = gradless.make_vec("Acrobot-v1", 7, autoreset_mode=mode, max_episode_steps=40, threads=3)
    np.testing.assert_array_equal(one.reset(seed=9)[0], three.reset(seed=9)[0])
    np.testing.assert_array_equal(one.reset(seed=[3, 1, 4, 1, 5, 9, 2])[0], three.reset(seed=[3, 1, 4, 1, 5, 9, 2])[0])
    for step, action in enumerate(actions_for(one.action_space, 120, 4)):
        *a, a_infos = one.step(action)
        *b, b_infos = three.step(action)
        assert_same_step(a, b, step)
        assert a_infos.keys() == b_infos.keys()
        if "episode" in a_infos:
            for key in ("r", "l"):
                np.testing.assert_array_equal(a_infos["episode"][key], b_infos["episode"][key])
            np.testing.assert_array_equal(a_infos["_episode"], b_infos["_episode"])
            # Durations are wall time: only whether an episode has one is shared.
            np.testing.assert_array_equal(a_infos["episode"]["t"] > 0, b_infos["_episode"])


def test_actions_may_be_lists_or_other_dtypes():
    env = gradless.make_vec("Pendulum-v1", 2)
    env.reset(seed=0)
    by_list = env.step([[0.5], [-1.0]])[0].copy()
    env.reset(seed=0)
    by_array = env.step(np.array([[0.5], [-1.0]], dtype=np.float64))[0]
    np.testing.assert_array_equal(by_list, by_array)
    with pytest.raises(TypeError, match="actions"):
        env.step("left")


def test_a_seed_list_and_an_unseeded_reset_continue_as_gymnasiums():
    ours = gradless.make_vec("Acrobot-v1", 2)
    theirs = gymnasium_vector("Acrobot-v1", 2, AutoresetMode.NEXT_STEP)
    np.testing.assert_array_equal(ours.reset(seed=[5, 9])[0], theirs.reset(seed=[5, 9])[0])
    # Unseeded resets continue each sub-env's generator.
    for _ in range(3):
        np.testing.assert_array_equal(ours.reset()[0], theirs.reset()[0])


def test_the_seed_given_at_construction_seeds_the_first_reset():
    a, _ = gradless.make_vec("CartPole-v1", 4, seed=11).reset()
    b, _ = gradless.make_vec("CartPole-v1", 4).reset(seed=11)
    np.testing.assert_array_equal(a, b)


def test_buffers_are_reused_and_typed_as_gymnasiums():
    env = gradless.make_vec("CartPole-v1", 5)
    obs, _ = env.reset(seed=0)
    obs2, rewards, terminated, truncated, _ = env.step(np.zeros(5, dtype=np.int64))
    assert obs2 is obs
    assert (obs.dtype, rewards.dtype, terminated.dtype, truncated.dtype) == (
        np.float32,
        np.float64,
        np.bool_,
        np.bool_,
    )
    assert obs.shape == (5, 4)
    _, rewards2, *_ = env.step(np.ones(5, dtype=np.int64))
    assert rewards2 is rewards
    # The episode statistics are buffers too: an entry is set only on the step its
    # episode ended, zero on the next.
    env.reset(seed=0)
    pushes = 0
    while True:
        *_, infos = env.step(np.ones(5, dtype=np.int64))
        pushes += 1
        if "episode" in infos:
            break
    ended = infos["_episode"].copy()
    assert (infos["episode"]["l"][ended] == pushes).all()
    *_, after = env.step(np.ones(5, dtype=np.int64))
    assert "episode" not in after or not after["_episode"][ended].any()
    assert (infos["episode"]["l"][ended] == 0).all() and not infos["_episode"][ended].any()


def test_env_keyword_arguments_reach_the_env():
    ours = gradless.make_vec("CartPole-v1", 2, sutton_barto_reward=True)
    theirs = gymnasium_vector("CartPole-v1", 2, AutoresetMode.NEXT_STEP, sutton_barto_reward=True)
    ours.reset(seed=3)
    theirs.reset(seed=3)
    for action in actions_for(theirs.action_space, 40, 1):
        assert_same_step(ours.step(action)[:4], theirs.step(action)[:4], 0)
    ours = gradless.make_vec("Pendulum-v1", 2, g=9.81)
    theirs = gymnasium_vector("Pendulum-v1", 2, AutoresetMode.NEXT_STEP, g=9.81)
    ours.reset(seed=3)
    theirs.reset(seed=3)
    for step, action in enumerate(actions_for(theirs.action_space, 40, 1)):
        assert_same_step(ours.step(action)[:4], theirs.step(action)[:4], step)
    with pytest.raises(TypeError, match="gravity"):
        gradless.make_vec("Pendulum-v1", 2, gravity=9.8)
    with pytest.raises(ValueError, match="Pendulum-v1 only"):
        gradless.make_vec("CartPole-v1", 2, g=9.8)
    with pytest.raises(ValueError, match="CartPole only"):
        gradless.make_vec("Pendulum-v1", 2, sutton_barto_reward=True)


def test_registered_ids_make_our_envs_through_gymnasium():
    vector = gymnasium.make_vec("gradless/CartPole-v1", num_envs=8)
    assert isinstance(vector, gradless.VectorEnv)
    assert vector.num_envs == 8
    # Gymnasium passes the registered limit: truncation at 500 steps, as CartPole-v1's.
    vector.reset(seed=0)
    for env_id in ENV_IDS:
        ours = gymnasium.make(f"gradless/{env_id}")
        theirs = gymnasium.make(env_id)
        assert ours.spec.max_episode_steps == theirs.spec.max_episode_steps
        obs, _ = ours.reset(seed=123)
        ref, _ = theirs.reset(seed=123)
        np.testing.assert_array_equal(obs, ref)
        for step, action in enumerate(actions_for(theirs.action_space, 300, 2)):
            mine = ours.step(action)
            want = theirs.step(action)
            np.testing.assert_array_equal(mine[0], want[0], err_msg=f"{env_id} step {step}")
            assert mine[1:4] == want[1:4], f"{env_id} step {step}"
            if want[2] or want[3]:
                np.testing.assert_array_equal(ours.reset()[0], theirs.reset()[0])


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: gradless.make_vec("Nope-v0", 2), ValueError, "known ids"),
        (lambda: gradless.make_vec("CartPole-v1", 0), ValueError, "num_envs"),
        (lambda: gradless.make_vec("CartPole-v1", 2**40), ValueError, "num_envs"),
        (lambda: gradless.make_vec("CartPole-v1", 2, max_episode_steps=0), ValueError, "max_episode_steps"),
        (lambda: gradless.make_vec("CartPole-v1", 2, autoreset_mode="later"), ValueError, "autoreset_mode"),
        (lambda: gradless.make_vec("CartPole-v1", 2, threads=0), ValueError, "threads"),
        (lambda: gradless.make_vec("CartPole-v1", 2, threads=10**6), ValueError, "threads"),
        (lambda: gradless.make_vec("CartPole-v1", 2, threads="two"), TypeError, "threads"),
    ],
)
def test_bad_arguments_raise_one_clear_exception(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_bad_actions_and_order_raise_clean_exceptions():
    env = gradless.make_vec("CartPole-v1", 2)
    with pytest.raises(gradless.GradlessError, match="reset"):
        env.step(np.zeros(2, dtype=np.int64))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action"):
        env.step(np.array([0, 2]))
    with pytest.raises(TypeError, match="integers"):
        env.step(np.array([0.5, 1.0]))
    env.step(np.array([0, 1], dtype=np.uint8))
    with pytest.raises(ValueError, match="actions for 3 envs"):
        env.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="seeds"):
        env.reset(seed=[1, 2, 3])
    one = gymnasium.make("gradless/CartPole-v1")
    one.reset(seed=0)
    with pytest.raises(TypeError):
        one.step(0.5)
    continuous = gradless.make_vec("Pendulum-v1", 2)
    continuous.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action"):
        continuous.step(np.array([[np.nan], [0.0]], dtype=np.float32))
