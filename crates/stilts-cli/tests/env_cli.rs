//! `stilts env`: the build, the caches with what they hold, and the variables in effect, secrets
//! hidden.

use std::process::Command;

#[test]
fn env_reports_build_caches_and_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = tmp.path().join("hub/models--org--tiny/blobs");
    std::fs::create_dir_all(&blob).unwrap();
    std::fs::write(blob.join("abc"), [0u8; 1000]).unwrap();
    std::fs::create_dir_all(tmp.path().join("glue/RTE")).unwrap();
    let run = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stilts"));
        cmd.arg("env")
            .env("HF_HUB_CACHE", tmp.path().join("hub"))
            .env("HF_TOKEN", "hf_do_not_print_me")
            .env("GLUE_DIR", tmp.path().join("glue"))
            .env("STILTS_CACHE", tmp.path().join("none"))
            .env("RAYON_NUM_THREADS", "2");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(true);
    assert!(!text.contains("hf_do_not_print_me"));
    let env: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(env["version"], env!("CARGO_PKG_VERSION"));
    assert!(!env["commit"].as_str().unwrap().is_empty());
    assert_eq!(env["rayon_num_threads"], "2");
    assert!(env["cpu"]["logical_cores"].as_u64().unwrap() >= 1);
    let features: Vec<&str> = env["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(features, ["wgpu", "cuda", "tch", "x86-v4"]);
    let location = |name: &str| {
        env["locations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()
            .clone()
    };
    let hub = location("hf_hub_cache");
    assert_eq!(hub["holds"], serde_json::json!(["org/tiny"]));
    assert_eq!(hub["size_bytes"], 1000);
    assert_eq!(location("glue_dir")["holds"], serde_json::json!(["RTE"]));
    assert_eq!(location("stilts_cache")["exists"], false);
    let vars: Vec<(String, String)> = serde_json::from_value(env["variables"].clone()).unwrap();
    assert!(vars.contains(&("HF_TOKEN".into(), "(set, hidden)".into())));
    assert!(vars.iter().any(|(k, _)| k == "GLUE_DIR"));

    let text = run(false);
    assert!(
        text.starts_with("stilts ") && text.contains("org/tiny") && !text.contains("hf_do_not"),
        "{text}"
    );
}

/// The thread count is one setting: `--threads`, else `STILTS_THREADS`, else rayon's default;
/// a bad one is an error naming where it came from.
#[test]
fn threads_come_from_the_flag_then_the_variable() {
    let threads = |args: &[&str], var: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stilts"));
        cmd.args(args)
            .arg("env")
            .arg("--json")
            .env("RAYON_NUM_THREADS", "2");
        match var {
            Some(v) => cmd.env("STILTS_THREADS", v),
            None => cmd.env_remove("STILTS_THREADS"),
        };
        let out = cmd.output().unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Ok(env["threads"].as_u64().unwrap())
    };
    assert_eq!(
        threads(&[], None),
        Ok(2),
        "rayon's own variable when neither is set"
    );
    assert_eq!(threads(&[], Some("3")), Ok(3));
    assert_eq!(
        threads(&["--threads", "1"], Some("3")),
        Ok(1),
        "the flag wins"
    );
    let err = threads(&[], Some("many")).unwrap_err();
    assert!(err.contains("STILTS_THREADS=\"many\""), "{err}");
    let err = threads(&["--threads", "0"], None).unwrap_err();
    assert!(err.contains("at least 1"), "{err}");
}
