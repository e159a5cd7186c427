//! Compile-fail cases for JWT scopes and the builder (`tests/ui/jwt_*.rs`, `.stderr` committed).
//! Regenerate with `TRYBUILD=overwrite cargo test -p tinybird-core --test jwt_ui` and review the diff.

#[test]
fn jwt_mistakes_do_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/jwt_*.rs");
}
