//! Proves that wgpu works on this machine (lavapipe on CI): the same computation on wgpu
//! and on the CPU backend agrees to float32 rounding.

use gradless_device::{Backend, describe, reference_computation};

#[test]
fn wgpu_and_flex_agree_on_a_small_network() {
    let report = describe(Backend::Wgpu).expect("a wgpu adapter (lavapipe without a GPU)");
    eprintln!("wgpu adapter: {report}");
    let on_gpu = reference_computation(Backend::Wgpu).unwrap();
    let on_cpu = reference_computation(Backend::Flex).unwrap();
    assert_eq!(on_gpu.len(), on_cpu.len());
    let worst = on_gpu
        .iter()
        .zip(&on_cpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0_f32, f32::max);
    assert!(worst < 1e-5, "wgpu and flex differ by up to {worst}");
}
