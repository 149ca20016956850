//! Container images of the product's binaries, made without Docker or a registry: an OCI image layout in a tar
//! archive (one layer, a config, a manifest, an index) that `ctr -n k8s.io images import` loads into containerd.
//! What the image runs as (user, working directory, entrypoint, command, ports) is read from the product's own
//! Dockerfile, so that what passes on a real node is what the published image runs; the layer holds what the
//! Dockerfile's distroless base gives a Rust binary: glibc and libgcc (the binary's own `ldd` list), `/etc/passwd`
//! with the nonroot user, its home and `/tmp`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How the final stage of a Dockerfile runs its image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunConfig {
    pub user: String,
    pub working_dir: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `8000/tcp`, …
    pub exposed_ports: Vec<String>,
    /// Where the final stage copies the binary (`COPY --from=builder … /chatbot`).
    pub binary_path: String,
}

/// The final stage of `dockerfile`: its `USER`, `WORKDIR`, `EXPOSE`, `ENTRYPOINT`, `CMD` and the `COPY` of the
/// binary. distroless's own defaults apply where the stage sets none (working directory `/`).
pub fn run_config(dockerfile: &str) -> anyhow::Result<RunConfig> {
    let joined = dockerfile.replace("\\\n", " ");
    let lines: Vec<&str> = joined.lines().collect();
    let last_from = lines
        .iter()
        .rposition(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .context("no FROM in the Dockerfile")?;
    let mut config = RunConfig {
        working_dir: "/".into(),
        ..RunConfig::default()
    };
    for line in &lines[last_from + 1..] {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match instruction.to_ascii_uppercase().as_str() {
            "USER" => config.user = rest.to_owned(),
            "WORKDIR" => config.working_dir = rest.to_owned(),
            "EXPOSE" => config
                .exposed_ports
                .extend(rest.split_whitespace().map(|p| match p.contains('/') {
                    true => p.to_owned(),
                    false => format!("{p}/tcp"),
                })),
            "ENTRYPOINT" => config.entrypoint = exec_form(rest)?,
            "CMD" => config.cmd = exec_form(rest)?,
            "COPY" => {
                config.binary_path = rest.split_whitespace().last().unwrap_or_default().to_owned();
            }
            _ => {}
        }
    }
    if config.entrypoint.is_empty() || config.binary_path.is_empty() {
        bail!("the final stage has no ENTRYPOINT or no COPY of the binary");
    }
    Ok(config)
}

fn exec_form(text: &str) -> anyhow::Result<Vec<String>> {
    serde_json::from_str(text).with_context(|| format!("not the exec (JSON) form: {text}"))
}

/// The OCI architecture name of this machine.
pub fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The shared libraries `binary` loads, as `ldd` resolves them here: (path in the image, file on this machine).
pub fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let out = Command::new("ldd").arg(binary).output().context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`.
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next().filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push((path.to_owned(), PathBuf::from(path)));
        }
    }
    Ok(libs)
}

/// The image `reference` of `binary`, run as `run` says, written to `out` as an importable archive.
pub fn build(reference: &str, binary: &Path, run: &RunConfig, out: &Path) -> anyhow::Result<()> {
    let mut files: BTreeMap<String, (Vec<u8>, u32)> = BTreeMap::new();
    let bin = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    files.insert(run.binary_path.clone(), (bin, 0o755));
    for (inside, here) in shared_libraries(binary)? {
        let content = std::fs::read(&here).with_context(|| format!("reading {}", here.display()))?;
        files.insert(inside, (content, 0o755));
    }
    // distroless/cc's users: root, nobody and nonroot (65532), whose home is writable by it.
    files.insert(
        "/etc/passwd".into(),
        (
            b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
              nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
                .to_vec(),
            0o644,
        ),
    );
    files.insert(
        "/etc/group".into(),
        (b"root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n".to_vec(), 0o644),
    );
    let layer = layer_tar(&files, &[("/home/nonroot", 65532, 0o700), ("/tmp", 0, 0o1777)])?;
    write_archive(reference, &layer, run, out)
}

/// One uncompressed layer: `dirs` (path, owner, mode) and `files` (path → content, mode), parents made as needed.
fn layer_tar(files: &BTreeMap<String, (Vec<u8>, u32)>, dirs: &[(&str, u64, u32)]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut made = std::collections::BTreeSet::new();
    let dir = |builder: &mut tar::Builder<Vec<u8>>, path: &str, owner: u64, mode: u32| -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(mode);
        header.set_uid(owner);
        header.set_gid(owner);
        header.set_size(0);
        header.set_mtime(0);
        builder.append_data(
            &mut header,
            format!("{}/", path.trim_start_matches('/')),
            std::io::empty(),
        )?;
        Ok(())
    };
    let mut parents = |builder: &mut tar::Builder<Vec<u8>>, path: &str| -> anyhow::Result<()> {
        let mut prefix = String::new();
        for part in path
            .trim_start_matches('/')
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p)
            .unwrap_or(&[])
        {
            prefix = format!("{prefix}/{part}");
            if made.insert(prefix.clone()) {
                dir(builder, &prefix, 0, 0o755)?;
            }
        }
        Ok(())
    };
    for (path, owner, mode) in dirs {
        parents(&mut builder, path)?;
        dir(&mut builder, path, *owner, *mode)?;
    }
    for (path, (content, mode)) in files {
        parents(&mut builder, path)?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(*mode);
        header.set_size(content.len() as u64);
        header.set_mtime(0);
        builder.append_data(&mut header, path.trim_start_matches('/'), content.as_slice())?;
    }
    Ok(builder.into_inner()?)
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The OCI image layout around `layer`, as a tar archive at `out`.
fn write_archive(reference: &str, layer: &[u8], run: &RunConfig, out: &Path) -> anyhow::Result<()> {
    let ports: serde_json::Map<String, Value> = run.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect();
    let mut config = json!({
        "User": run.user,
        "WorkingDir": run.working_dir,
        "Entrypoint": run.entrypoint,
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "ExposedPorts": ports,
    });
    if !run.cmd.is_empty() {
        config["Cmd"] = json!(run.cmd);
    }
    let image_config = serde_json::to_vec(&json!({
        "architecture": architecture(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
    }))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(&image_config), "size": image_config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": layer.len()}],
    }))?;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(&manifest), "size": manifest.len(),
            "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": reference},
        }],
    }))?;
    let mut archive = tar::Builder::new(std::fs::File::create(out)?);
    let mut add = |name: String, content: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        header.set_mtime(0);
        archive.append_data(&mut header, name, content)
    };
    add("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for blob in [layer, &image_config, &manifest] {
        add(format!("blobs/sha256/{}", &digest(blob)["sha256:".len()..]), blob)?;
    }
    add("index.json".into(), &index)?;
    archive.into_inner()?.flush()?;
    Ok(())
}

/// What an archive made by [`build`] says of itself: its reference, its image config, and its layer's paths.
pub fn inspect(archive: &Path) -> anyhow::Result<(String, Value, Vec<String>)> {
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut reader = tar::Archive::new(std::fs::File::open(archive)?);
    for entry in reader.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.display().to_string();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content)?;
        blobs.insert(name, content);
    }
    let blob = |d: &str| -> anyhow::Result<&Vec<u8>> {
        let name = format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        let content = blobs.get(&name).with_context(|| format!("no blob {name}"))?;
        if digest(content) != d {
            bail!("blob {name} does not match its digest");
        }
        Ok(content)
    };
    let index: Value = serde_json::from_slice(blobs.get("index.json").context("no index.json")?)?;
    let entry = &index["manifests"][0];
    let reference = entry["annotations"]["io.containerd.image.name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let manifest: Value = serde_json::from_slice(blob(entry["digest"].as_str().unwrap_or_default())?)?;
    let config: Value = serde_json::from_slice(blob(manifest["config"]["digest"].as_str().unwrap_or_default())?)?;
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap_or_default())?;
    if config["rootfs"]["diff_ids"][0] != manifest["layers"][0]["digest"] {
        bail!("the config's diff_id is not the layer's digest");
    }
    let mut paths = Vec::new();
    for e in tar::Archive::new(layer.as_slice()).entries()? {
        paths.push(format!("/{}", e?.path()?.display()));
    }
    Ok((reference, config, paths))
}
