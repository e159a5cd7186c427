//! Every mistake the derives catch at compile time, one file per mistake, grouped by family under `tests/ui/`. The
//! `.stderr` files are committed: the toolchain is pinned, so they are the exact messages users see.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
