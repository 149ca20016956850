//! Child processes that die with the test process, whatever way it ends (a failed assertion, a killed `cargo
//! test`). Linux sends PR_SET_PDEATHSIG when the *thread* that spawned a child ends, and test threads end after
//! each test: every child is therefore spawned by one thread that lives as long as the process.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{LazyLock, Mutex};

type Request = (Command, mpsc::Sender<std::io::Result<Child>>);

static SPAWNER: LazyLock<Mutex<mpsc::Sender<Request>>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("control-plane-spawner".into())
        .spawn(move || {
            for (mut command, reply) in rx {
                // SAFETY: prctl is async-signal-safe and touches nothing of the parent.
                unsafe {
                    command.pre_exec(|| {
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                let _ = reply.send(command.spawn());
            }
        })
        .expect("the spawner thread starts");
    Mutex::new(tx)
});

/// Spawns `command` so that it is killed when the test process exits.
pub fn spawn(command: Command) -> std::io::Result<Child> {
    let (tx, rx) = mpsc::channel();
    SPAWNER
        .lock()
        .unwrap()
        .send((command, tx))
        .expect("the spawner thread runs");
    rx.recv().expect("the spawner thread answers")
}

/// Stops a child: SIGTERM, then SIGKILL after `grace`.
pub fn stop(child: &mut Child, grace: std::time::Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: signalling our own child by its pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
