//! The cluster's certificates and credentials, made with `openssl`: a CA, the API server's serving certificate
//! (valid for the `kubernetes` Service's ClusterIP and the node's address, so in-cluster clients verify it), its
//! client certificate towards the kubelet, the kubelet's serving certificate, the service-account key pair, and a
//! static token per component.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use super::config::Addresses;

/// The components that authenticate with a token: (user, groups).
pub const USERS: &[(&str, &str)] = &[
    ("admin", "system:masters"),
    ("system:node:cbnode", "system:nodes"),
    ("system:kube-controller-manager", ""),
    ("system:kube-scheduler", ""),
    ("system:kube-proxy", ""),
    ("system:coredns", ""),
];

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .context("running openssl (Debian's openssl package)")?;
    if !out.status.success() {
        bail!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A key and a certificate `name` signed by the CA in `dir`, with these extensions.
fn signed(dir: &Path, name: &str, subject: &str, extensions: &str) -> anyhow::Result<()> {
    let (key, csr, crt, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    )?;
    std::fs::write(dir.join(&ext), extensions)?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-sha256",
            "-days",
            "30",
            "-out",
            &crt,
            "-extfile",
            &ext,
        ],
    )?;
    std::fs::remove_file(dir.join(csr))?;
    std::fs::remove_file(dir.join(ext))?;
    Ok(())
}

/// Writes everything into `dir` and returns the tokens by user.
pub fn make(dir: &Path, a: &Addresses, node: &str) -> anyhow::Result<Vec<(String, String)>> {
    std::fs::create_dir_all(dir)?;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-sha256",
            "-days",
            "30",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=cbnode-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
    )?;
    let serving = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n";
    signed(
        dir,
        "apiserver",
        "/CN=kube-apiserver",
        &format!(
            "{serving}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:kubernetes,DNS:kubernetes.default,\
         DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:{},IP:{},IP:127.0.0.1\n",
            a.kubernetes_service_ip, a.node_ip
        ),
    )?;
    // system:masters, so that the kubelet's webhook authorization lets the API server fetch logs and exec.
    signed(
        dir,
        "apiserver-kubelet-client",
        "/O=system:masters/CN=kube-apiserver-kubelet-client",
        &format!("{serving}extendedKeyUsage=clientAuth\n"),
    )?;
    signed(
        dir,
        "kubelet",
        &format!("/O=system:nodes/CN=system:node:{node}"),
        &format!(
            "{serving}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:{node},IP:{}\n",
            a.node_ip
        ),
    )?;
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "sa.key",
        ],
    )?;
    openssl(dir, &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
    let mut tokens = Vec::new();
    let mut csv = String::new();
    for (i, (user, groups)) in USERS.iter().enumerate() {
        let token = format!("{:032x}", rand_u128());
        csv.push_str(&format!("{token},{user},uid-{i},\"{groups}\"\n"));
        tokens.push((user.to_string(), token));
    }
    std::fs::write(dir.join("tokens.csv"), csv)?;
    Ok(tokens)
}

/// 128 random bits from the kernel.
fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    let mut f = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    std::io::Read::read_exact(&mut f, &mut bytes).expect("16 random bytes");
    u128::from_le_bytes(bytes)
}
