use super::*;

#[test]
fn placeholder_fmix_is_a_bijection_on_samples() {
    assert_ne!(fmix64(1), fmix64(2));
}
