//! The images made for a real node run as the published ones do: same user, working directory, entrypoint, command
//! and ports as `chatbot/Dockerfile` and `operator/Dockerfile`, and a well-formed OCI archive containerd imports.

use std::path::Path;

use e2e_tests::image::{self, RunConfig};
use serde_json::json;

fn dockerfile(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)).unwrap()
}

#[test]
fn the_dockerfiles_final_stages_are_read_as_docker_reads_them() {
    assert_eq!(
        image::run_config(&dockerfile("chatbot/Dockerfile")).unwrap(),
        RunConfig {
            user: "65532:65532".into(),
            working_dir: "/home/nonroot".into(),
            entrypoint: vec!["/chatbot".into()],
            cmd: vec![],
            exposed_ports: vec!["8000/tcp".into(), "8081/tcp".into()],
            binary_path: "/chatbot".into(),
        }
    );
    assert_eq!(
        image::run_config(&dockerfile("operator/Dockerfile")).unwrap(),
        RunConfig {
            user: "65532:65532".into(),
            working_dir: "/".into(),
            entrypoint: vec!["/chatbot-operator".into()],
            cmd: vec!["run".into()],
            exposed_ports: vec!["8080/tcp".into()],
            binary_path: "/chatbot-operator".into(),
        }
    );
}

/// Any dynamically linked binary shows the layout; the node tier builds the product's own the same way.
#[test]
fn an_image_carries_its_dockerfiles_run_config_and_the_libraries_its_binary_loads() {
    let binary = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (path, reference) in [
        ("chatbot/Dockerfile", "ghcr.io/chatbot-sav/chatbot:0.1.0"),
        ("operator/Dockerfile", "ghcr.io/chatbot-sav/chatbot-operator:0.1.0"),
    ] {
        let run = image::run_config(&dockerfile(path)).unwrap();
        let out = dir.path().join("image.tar");
        image::build(reference, &binary, &run, &out).unwrap();
        let (name, config, paths) = image::inspect(&out).unwrap();
        assert_eq!(name, reference);
        assert_eq!(
            (config["os"].as_str(), config["architecture"].as_str()),
            (Some("linux"), Some(image::architecture()))
        );
        let c = &config["config"];
        assert_eq!(c["User"], json!(run.user), "{path}");
        assert_eq!(c["WorkingDir"], json!(run.working_dir), "{path}");
        assert_eq!(c["Entrypoint"], json!(run.entrypoint), "{path}");
        let ports: Vec<&String> = c["ExposedPorts"].as_object().unwrap().keys().collect();
        assert_eq!(ports, run.exposed_ports.iter().collect::<Vec<_>>(), "{path}");
        match run.cmd.is_empty() {
            true => assert!(c.get("Cmd").is_none(), "{path}"),
            false => assert_eq!(c["Cmd"], json!(run.cmd), "{path}"),
        }
        for needed in [run.binary_path.as_str(), "/etc/passwd", "/home/nonroot/", "/tmp/"] {
            assert!(paths.iter().any(|p| p == needed), "{needed} missing from {paths:?}");
        }
        for (inside, _) in image::shared_libraries(&binary).unwrap() {
            assert!(paths.contains(&inside), "{inside} missing from {paths:?}");
        }
        assert!(
            paths.iter().any(|p| p.contains("libc.so")),
            "glibc is in the layer: {paths:?}"
        );
    }
}
