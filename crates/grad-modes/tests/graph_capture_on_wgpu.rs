//! burn's graph capture on wgpu (lavapipe on CI): an inference-mode policy step is recorded
//! once and replayed on whatever is written into its input, while autodiff devices, which do
//! not implement capture, re-run the step.

use gradless_device::{Backend, open};
use gradless_grad_modes::{CapturedPolicy, GradMode, ModedPolicy};
use gradless_policy::Checkpoint;
use gradless_test_support::shipped_checkpoint;

const ROWS: usize = 64;

/// Observations spread over CartPole's reachable states, so that batches differ in their
/// greedy actions.
fn observations(phase: f32) -> Vec<f32> {
    let scale = [1.0, 1.5, 0.15, 1.5];
    (0..ROWS * 4)
        .map(|k| ((k as f32) * 0.73 + phase).sin() * scale[k % 4])
        .collect()
}

#[test]
fn a_captured_step_replays_on_each_new_input_and_autodiff_falls_back() {
    let checkpoint = Checkpoint::open(&shipped_checkpoint("cartpole-v1-ppo")).unwrap();
    let base = open(Backend::Wgpu).expect("a wgpu adapter (lavapipe without a GPU)");

    let policy = ModedPolicy::load(&checkpoint, &base, GradMode::Inference).unwrap();
    let mut captured = CapturedPolicy::capture(&policy, &observations(0.0), 4);
    assert!(captured.hardware_graph(), "wgpu recorded no graph");
    let mut seen = Vec::new();
    for phase in [1.0, 2.0, 3.0, 4.0] {
        let input = observations(phase);
        let replayed = captured.step(&input, 4).unwrap();
        assert_eq!(replayed, policy.step(&input, 4).unwrap(), "phase {phase}");
        seen.push(replayed);
    }
    // A replay that read a stale input would repeat the previous batch's actions.
    assert!(
        seen.windows(2).all(|pair| pair[0] != pair[1]),
        "the batches' actions should differ"
    );

    let tracked = ModedPolicy::load(&checkpoint, &base, GradMode::Tracked).unwrap();
    let mut rerun = CapturedPolicy::capture(&tracked, &observations(0.0), 4);
    assert!(!rerun.hardware_graph(), "autodiff devices record no graph");
    let input = observations(5.0);
    assert_eq!(
        rerun.step(&input, 4).unwrap(),
        tracked.step(&input, 4).unwrap()
    );
}
