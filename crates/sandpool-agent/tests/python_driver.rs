//! The agent with the real IPython driver: results, state, output capture, errors, plots,
//! timeouts, crashes and reseeding.

mod common;

use common::{text, Agent};
use sandpool_proto::{encode_frame, DriverState, Envelope, ErrorKind, ExecutionStatus, Request, Response};
use std::time::{Duration, Instant};

#[test]
fn cells_return_results_keep_state_and_capture_output() {
    let agent = Agent::python();
    let r = agent.execute("1+1", 30_000);
    assert_eq!((r.status, text(&r)), (ExecutionStatus::Ok, "2"));
    assert!(!r.state_lost);

    agent.execute("x = 20", 30_000);
    assert_eq!(text(&agent.execute("x + 1", 30_000)), "21");

    let r = agent.execute(
        "print('hello'); import sys; print('oops', file=sys.stderr)",
        30_000,
    );
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("hello\n", "oops\n"));
    assert!(r.result.is_none());

    let r = agent.execute("import os; os.getcwd()", 30_000);
    let cwd = agent.data.path().canonicalize().unwrap();
    assert_eq!(text(&r), format!("{:?}", cwd.to_str().unwrap()).replace('"', "'"));

    let r = agent.execute(
        "from IPython.display import display, HTML\ndisplay(HTML('<b>hi</b>'))",
        30_000,
    );
    assert_eq!(r.displays.len(), 1, "{r:?}");
    assert_eq!(r.displays[0]["text/html"], "<b>hi</b>");
}

#[test]
fn exceptions_come_back_as_structured_errors() {
    let agent = Agent::python();
    let r = agent.execute("def f():\n    raise ValueError('bad value')\nf()", 30_000);
    assert_eq!(r.status, ExecutionStatus::Error);
    let e = r.error.expect("error details");
    assert_eq!((e.ename.as_str(), e.evalue.as_str()), ("ValueError", "bad value"));
    assert!(
        e.traceback.iter().any(|l| l.contains("raise ValueError")),
        "{:?}",
        e.traceback
    );
    assert!(
        e.traceback.iter().all(|l| !l.contains('\x1b')),
        "ANSI left in {:?}",
        e.traceback
    );

    let r = agent.execute("def broken(:", 30_000);
    assert_eq!(r.error.unwrap().ename, "SyntaxError");
    // The shell is still usable afterwards.
    assert_eq!(text(&agent.execute("3*3", 30_000)), "9");
}

#[test]
fn magics_shell_escapes_and_fd_level_output_are_captured() {
    let agent = Agent::python();
    let r = agent.execute(
        "import os\nn = os.write(1, b'junk-on-fd1\\n')\nos.write(2, b'fd2\\n')",
        30_000,
    );
    assert_eq!(r.stdout, "junk-on-fd1\n");
    assert_eq!(r.stderr, "fd2\n");
    // The channel survived the stray writes.
    assert_eq!(text(&agent.execute("40+2", 30_000)), "42");

    let r = agent.execute("!echo from-a-subprocess; echo err-side >&2", 30_000);
    assert_eq!(r.status, ExecutionStatus::Ok, "{r:?}");
    assert!(r.stdout.contains("from-a-subprocess"), "{r:?}");
    assert!(r.stderr.contains("err-side"), "{r:?}");

    // Python's buffered output is flushed before commands write to the same fds.
    let r = agent.execute(
        "import subprocess\nprint('one')\n!echo two\nprint('three')\nsubprocess.run(['echo', 'four'])\n\
         print('five')\nos.system('echo six')\nprint('seven', flush=False)",
        30_000,
    );
    assert_eq!(r.stdout, "one\ntwo\nthree\nfour\nfive\nsix\nseven\n", "{r:?}");

    let r = agent.execute("%time sum(range(10))", 30_000);
    assert_eq!(text(&r), "45");

    let r = agent.execute("import ctypes\nctypes.CDLL(None).printf(b'from C\\n')", 30_000);
    assert!(r.stdout.contains("from C"), "{r:?}");
}

#[test]
fn matplotlib_figures_come_back_as_png() {
    let agent = Agent::python();
    let r = agent.execute(
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')",
        60_000,
    );
    assert_eq!(r.status, ExecutionStatus::Ok, "{r:?}");
    let pngs: Vec<_> = r.displays.iter().filter_map(|d| d.get("image/png")).collect();
    assert_eq!(pngs.len(), 1, "{r:?}");
    assert!(
        pngs[0].starts_with("iVBORw0KGgo"),
        "not base64 PNG: {}",
        &pngs[0][..20]
    );

    let r = agent.execute(
        "%matplotlib inline\nfig, ax = plt.subplots()\nax.bar([1, 2], [3, 4])\nplt.show()",
        60_000,
    );
    assert_eq!(r.status, ExecutionStatus::Ok, "{r:?}");
    assert_eq!(
        r.displays.iter().filter(|d| d.contains_key("image/png")).count(),
        1,
        "{r:?}"
    );
    // Shown figures are closed: the next cell has none.
    assert!(agent.execute("1", 30_000).displays.is_empty());
}

#[test]
fn a_timed_out_cell_is_interrupted_and_state_survives() {
    let agent = Agent::python();
    agent.execute("kept = 'still here'", 30_000);
    let started = Instant::now();
    let r = agent.execute("while True: pass", 2_000);
    assert_eq!(r.status, ExecutionStatus::Timeout, "{r:?}");
    assert!(!r.state_lost);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.error.unwrap().ename, "KeyboardInterrupt");
    assert_eq!(text(&agent.execute("kept", 30_000)), "'still here'");
}

#[test]
fn a_cell_that_ignores_interrupts_is_killed_and_the_driver_restarted() {
    let agent = Agent::python();
    agent.execute("lost = 1", 30_000);
    let r = agent.execute(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass",
        1_000,
    );
    assert_eq!(r.status, ExecutionStatus::Timeout, "{r:?}");
    assert!(r.state_lost);
    let r = agent.execute("1+1", 60_000);
    assert_eq!((r.status, text(&r)), (ExecutionStatus::Ok, "2"));
    let r = agent.execute("lost", 30_000);
    assert_eq!(r.error.unwrap().ename, "NameError");
}

#[test]
fn a_driver_that_dies_mid_cell_is_reported_and_replaced() {
    let agent = Agent::python();
    let r = agent.execute("import os; os._exit(3)", 30_000);
    assert_eq!(r.status, ExecutionStatus::Error, "{r:?}");
    assert!(r.state_lost);
    let e = r.error.unwrap();
    assert!(e.evalue.contains("exit code 3"), "{e:?}");
    assert_eq!(text(&agent.execute("'alive'", 60_000)), "'alive'");
}

#[test]
fn reseed_changes_the_random_sequence() {
    let agent = Agent::python();
    let seed = |s: &[u8]| agent.call(Request::Reseed { seed: s.to_vec() });
    assert_eq!(seed(b"one"), Response::Done);
    let a = text(&agent.execute("import random; random.random()", 30_000)).to_owned();
    assert_eq!(seed(b"two"), Response::Done);
    let b = text(&agent.execute("random.random()", 30_000)).to_owned();
    assert_eq!(seed(b"one"), Response::Done);
    let a_again = text(&agent.execute("random.random()", 30_000)).to_owned();
    assert_ne!(a, b);
    assert_eq!(a, a_again);
}

#[test]
fn warm_imports_modules_and_reports_missing_ones() {
    let agent = Agent::python();
    let warm = |m: &[&str]| {
        agent.call(Request::Warm {
            modules: m.iter().map(|s| s.to_string()).collect(),
        })
    };
    let frozen = "import gc; gc.get_freeze_count()";
    let at_start: u64 = text(&agent.execute(frozen, 30_000)).parse().unwrap();
    assert!(
        at_start > 1000,
        "IPython's objects are frozen at start: {at_start}"
    );
    assert_eq!(warm(&["json", "matplotlib"]), Response::Done);
    assert_eq!(
        text(&agent.execute("import sys; 'matplotlib.pyplot' in sys.modules", 30_000)),
        "True"
    );
    let after_warm: u64 = text(&agent.execute(frozen, 30_000)).parse().unwrap();
    assert!(
        after_warm > at_start,
        "warmed modules are frozen too: {after_warm}"
    );
    match warm(&["no_such_module_xyz"]) {
        Response::Error(e) => assert_eq!(e.kind, ErrorKind::NotFound),
        other => panic!("unexpected {other:?}"),
    }
    match agent.call(Request::Health) {
        Response::Health(h) => assert_eq!(h.driver, DriverState::Ready),
        other => panic!("unexpected {other:?}"),
    }
}

/// Prints the host round-trip time of `print(1)` through agent and driver (not asserted).
#[test]
fn round_trip_latency_report() {
    let agent = Agent::python();
    agent.execute("print(1)", 30_000);
    let mut samples: Vec<Duration> = (0..500)
        .map(|_| {
            let t = Instant::now();
            let r = agent.execute("print(1)", 30_000);
            assert_eq!(r.stdout, "1\n");
            t.elapsed()
        })
        .collect();
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "print(1) round trip through agent+driver over {} runs: p50 {:?}, p99 {:?}",
        samples.len(),
        p(0.50),
        p(0.99)
    );
}

#[test]
fn closing_the_channel_kills_the_driver() {
    let mut agent = Agent::python();
    let pid: u32 = text(&agent.execute("import os; os.getpid()", 30_000))
        .parse()
        .unwrap();
    assert!(agent.close().expect("agent exited").success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "driver {pid} outlived the agent"
    );
}

#[test]
fn huge_or_redirected_output_does_not_break_the_channel() {
    let agent = Agent::python();
    let r = agent.execute("print('x' * 20_000_000)", 60_000);
    assert!(r.stdout.len() < 17 << 20, "{}", r.stdout.len());
    assert!(r.stdout.contains("output truncated"));
    // A cell that points fd 1 elsewhere only affects itself.
    let r = agent.execute(
        "import os\nos.dup2(os.open(os.devnull, os.O_WRONLY), 1)\nprint('gone')",
        30_000,
    );
    assert_eq!(r.stdout, "");
    assert_eq!(agent.execute("print('back')", 30_000).stdout, "back\n");
    // Rich output too large for one frame is dropped with a note; state is kept.
    let r = agent.execute(
        "from IPython.display import display\nkeep = 1\ndisplay({'text/plain': 'y' * 60_000_000}, raw=True)",
        60_000,
    );
    assert_eq!(r.status, ExecutionStatus::Ok);
    assert!(
        r.displays.is_empty() && r.stderr.contains("rich output dropped"),
        "{}",
        r.stderr
    );
    assert_eq!(text(&agent.execute("keep", 30_000)), "1");
}

/// Sends `request` without waiting; returns the receiver of its response.
fn send(agent: &Agent, id: u64, request: Request) -> std::sync::mpsc::Receiver<Response> {
    let rx = agent.expect(id);
    agent.send_raw(&encode_frame(&Envelope { id, body: request }).unwrap());
    rx
}

fn answer(rx: &std::sync::mpsc::Receiver<Response>) -> Response {
    rx.recv_timeout(common::CALL_TIMEOUT).expect("no answer")
}

#[test]
fn requests_sent_while_a_cell_runs_wait_their_turn_in_order() {
    let agent = Agent::python();
    agent.execute("order = []", 30_000);
    let slow = send(
        &agent,
        1000,
        Request::Execute {
            code: "import time; time.sleep(2); order.append('slow')".into(),
            timeout_ms: 30_000,
        },
    );
    let queued: Vec<_> = (0..5)
        .map(|i| {
            let request = Request::Execute {
                code: format!("order.append({i})"),
                timeout_ms: 30_000,
            };
            send(&agent, 1001 + i, request)
        })
        .collect();
    let reseed = send(&agent, 1010, Request::Reseed { seed: vec![7; 32] });
    // Health is answered at once, without waiting for the cell.
    let started = Instant::now();
    match agent.call(Request::Health) {
        Response::Health(h) => assert_eq!(h.driver, DriverState::Ready),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "health waited for the cell"
    );
    for rx in std::iter::once(&slow).chain(&queued) {
        assert!(matches!(answer(rx), Response::Execution(r) if r.status == ExecutionStatus::Ok));
    }
    assert_eq!(answer(&reseed), Response::Done);
    assert_eq!(text(&agent.execute("order", 30_000)), "['slow', 0, 1, 2, 3, 4]");
}

#[test]
fn large_cells_reach_the_driver_whole() {
    let agent = Agent::python();
    // Well past the size the request thread writes itself (the supervisor writes these).
    let code = format!("blob = '{}'\nlen(blob)", "a".repeat(3 << 20));
    let r = agent.execute(&code, 60_000);
    assert_eq!(text(&r), (3 << 20).to_string(), "{r:?}");
    assert_eq!(text(&agent.execute("blob[:3]", 30_000)), "'aaa'");
}

#[test]
fn a_driver_that_dies_between_cells_is_replaced_and_the_next_cell_says_so() {
    let agent = Agent::python();
    agent.execute("lost = 1", 30_000);
    // Kills the driver 0.2 s after this cell has answered.
    let r = agent.execute(
        "import os, signal, threading\nthreading.Timer(0.2, os.kill, (os.getpid(), signal.SIGKILL)).start()",
        30_000,
    );
    assert_eq!(r.status, ExecutionStatus::Ok, "{r:?}");
    std::thread::sleep(Duration::from_millis(600));
    let r = agent.execute("'fresh'", 60_000);
    assert_eq!((r.status, text(&r)), (ExecutionStatus::Ok, "'fresh'"));
    assert!(r.state_lost, "{r:?}");
    let r = agent.execute("lost", 30_000);
    assert!(!r.state_lost);
    assert_eq!(r.error.unwrap().ename, "NameError");
}

#[test]
fn a_request_written_to_a_driver_that_already_died_runs_on_the_next_one() {
    let agent = Agent::python();
    agent.execute("lost = 1", 30_000);
    let pid: i32 = text(&agent.execute("import os; os.getpid()", 30_000))
        .parse()
        .unwrap();
    // Stopped, the driver cannot read the next request; killed, it never will.
    // SAFETY: signals a process this test's agent started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    // The signal is asynchronous: until the driver is in state T it may still read.
    let stopped = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit(')')
                    .next()
                    .map(|rest| rest.trim_start().starts_with('T'))
            })
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stopped() {
        assert!(Instant::now() < deadline, "the driver did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pending = send(
        &agent,
        2000,
        Request::Execute {
            code: "'ran'".into(),
            timeout_ms: 60_000,
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    match answer(&pending) {
        Response::Execution(r) => {
            assert_eq!((r.status, text(&r)), (ExecutionStatus::Ok, "'ran'"), "{r:?}");
            assert!(r.state_lost, "{r:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(agent.execute("lost", 30_000).error.unwrap().ename, "NameError");
}
