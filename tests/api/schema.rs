//! `schema.graphql` is the exported contract; it must equal what the server builds.

#[test]
fn schema_graphql_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let sdl = stagefit::graphql::sdl();
    if std::env::var_os("STAGEFIT_UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).expect("write schema.graphql");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql` (or the tests with STAGEFIT_UPDATE_SCHEMA=1) and review the diff"
    );
}

#[test]
fn the_cli_prints_the_same_schema() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stagefit"))
        .arg("schema")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        stagefit::graphql::sdl()
    );
}
