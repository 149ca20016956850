//! The memory limit the process runs under, from its cgroup (what a container's `resources.limits.memory` becomes):
//! cgroup v2's `memory.max`, or v1's `memory.limit_in_bytes`, the tightest along the path from the process's cgroup up
//! to its hierarchy's mount, since a limit set on a parent (a pod's, a systemd slice's) binds the child too. `None`
//! when nothing limits it. Read at each sample: a pod's limits can be resized in place.

use std::path::{Path, PathBuf};

/// v1 writes "no limit" as the largest page-aligned i64; anything this high is no limit.
const V1_UNLIMITED_FROM: u64 = 1 << 62;

/// Where the memory controller's files for this process live: (directory of its cgroup, mount point, v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryCgroup {
    pub dir: PathBuf,
    pub mount: PathBuf,
    pub v2: bool,
}

/// The memory cgroup of a process from its `/proc/<pid>/cgroup` and `/proc/<pid>/mountinfo` (pure).
pub fn locate(proc_cgroup: &str, mountinfo: &str) -> Option<MemoryCgroup> {
    // v1: "4:memory:/path" (the controller may share a hierarchy: "4:cpu,memory:/path"); v2: "0::/path".
    let v1 = proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == "memory").then_some(path)
    });
    let v2 = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"));
    for line in mountinfo.lines() {
        // "35 31 0:32 <root> <mount point> <options> [optional fields] - <fstype> <source> <super options>"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split_whitespace().collect();
        let mut right = right.split_whitespace();
        let (fstype, options) = (right.next().unwrap_or(""), right.nth(1).unwrap_or(""));
        let (Some(root), Some(mount)) = (fields.get(3).copied(), fields.get(4).copied()) else {
            continue;
        };
        let (path, is_v2) = match (fstype, v1, v2) {
            ("cgroup", Some(path), _) if options.split(',').any(|o| o == "memory") => (path, false),
            ("cgroup2", None, Some(path)) => (path, true),
            _ => continue,
        };
        // The mount shows the hierarchy from `root` down (a container's cgroup namespace shows "/").
        let relative = path.strip_prefix(root).unwrap_or(path).trim_start_matches('/');
        let mount = PathBuf::from(mount);
        return Some(MemoryCgroup {
            dir: mount.join(relative),
            mount,
            v2: is_v2,
        });
    }
    None
}

/// One limit file's content: bytes, or `None` for no limit.
pub fn parse_limit(text: &str, v2: bool) -> Option<u64> {
    let text = text.trim();
    if v2 && text == "max" {
        return None;
    }
    text.parse::<u64>().ok().filter(|&b| v2 || b < V1_UNLIMITED_FROM)
}

/// The tightest memory limit from `cgroup.dir` up to its mount, if any.
pub fn memory_limit(cgroup: &MemoryCgroup) -> Option<u64> {
    let file = if cgroup.v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let mut dir: &Path = &cgroup.dir;
    let mut tightest: Option<u64> = None;
    loop {
        if let Some(limit) = std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|t| parse_limit(&t, cgroup.v2))
        {
            tightest = Some(tightest.map_or(limit, |t| t.min(limit)));
        }
        if dir == cgroup.mount {
            return tightest;
        }
        match dir.parent() {
            Some(parent) if parent.starts_with(&cgroup.mount) => dir = parent,
            _ => return tightest,
        }
    }
}

/// This process's memory limit, if any (Linux; `None` elsewhere or when the files cannot be read).
pub fn own_memory_limit() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    memory_limit(&locate(&cgroup, &mountinfo)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_MOUNTS: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";

    #[test]
    fn v1_and_v2_hierarchies_are_found() {
        let v1 = locate("4:memory:/kubepods/burstable/pod1/abc\n1:cpu:/\n0::/\n", V1_MOUNTS).unwrap();
        assert_eq!(
            v1,
            MemoryCgroup {
                dir: "/sys/fs/cgroup/memory/kubepods/burstable/pod1/abc".into(),
                mount: "/sys/fs/cgroup/memory".into(),
                v2: false
            }
        );
        // A container with its own cgroup namespace on v2: the mount's root is its cgroup.
        let v2 = locate(
            "0::/\n",
            "29 23 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        )
        .unwrap();
        assert_eq!((v2.dir.clone(), v2.v2), (PathBuf::from("/sys/fs/cgroup/"), true));
        // A host path seen from a mount whose root is deeper than "/".
        let nested = locate(
            "0::/system.slice/chatbot.service\n",
            "29 23 0:26 /system.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        )
        .unwrap();
        assert_eq!(nested.dir, PathBuf::from("/sys/fs/cgroup/chatbot.service"));
    }

    #[test]
    fn unlimited_is_none_in_both_versions() {
        assert_eq!(parse_limit("max\n", true), None);
        assert_eq!(parse_limit("268435456\n", true), Some(268435456));
        assert_eq!(parse_limit("9223372036854771712\n", false), None);
        assert_eq!(parse_limit("536870912\n", false), Some(536870912));
    }

    #[test]
    fn the_tightest_limit_from_the_cgroup_up_to_the_mount_wins() {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join("pod/container");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(root.path().join("memory.max"), "max\n").unwrap();
        std::fs::write(root.path().join("pod/memory.max"), "268435456\n").unwrap();
        std::fs::write(leaf.join("memory.max"), "max\n").unwrap();
        let cgroup = MemoryCgroup {
            dir: leaf,
            mount: root.path().to_owned(),
            v2: true,
        };
        assert_eq!(memory_limit(&cgroup), Some(268435456));
        std::fs::write(root.path().join("pod/memory.max"), "max\n").unwrap();
        assert_eq!(memory_limit(&cgroup), None);
    }
}
