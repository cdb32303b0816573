//! mosquitto's password and ACL files (`junction::auth::mosquitto`) against the real thing.
//!
//! - Password files written by the real `mosquitto_passwd` (the committed fixture
//!   `tests/fixtures/mosquitto/passwd`, and fresh ones when `mosquitto_passwd` is on PATH),
//!   `$6$` lines made with Python's `hashlib`, wrong passwords, unknown users, malformed lines.
//! - `junction passwd` (the binary): create, add, update, delete, password from stdin, mode
//!   0600, exit codes; its files read by our parser, by `mosquitto_passwd`, and by a real
//!   `mosquitto` broker (`mosquitto_pub -u -P`: right password accepted, wrong refused).
//! - The ACL decision of `AclFile::check` for Read and Write compared with a live mosquitto
//!   broker given the same `acl_file`, over a matrix of identities and topics.
//!
//! The parts that need mosquitto's programs say so on stderr and pass when they are missing.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use junction::auth::mosquitto::{
    update_password_file, Access, AclFile, PasswdChange, PasswdError, PasswordFile,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mosquitto")
        .join(name)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn skip(what: &str, program: &str) -> bool {
    if on_path(program) {
        return false;
    }
    eprintln!("SKIPPED {what}: {program} not on PATH (apt-get install mosquitto)");
    true
}

fn junction(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run junction");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

// ---------------------------------------------------------------------------------------
// Password files

#[test]
fn fixture_written_by_mosquitto_passwd() {
    let f = PasswordFile::load(&fixture("passwd")).unwrap();
    assert_eq!(
        f.users().collect::<Vec<_>>(),
        ["alice", "bob", "old", "iter", "jürgen", "colon"]
    );
    let good: [(&str, &str); 6] = [
        ("alice", "secret"),
        ("bob", "correct horse battery staple"),
        ("old", "oldpass"),
        ("iter", "iterpass"),
        ("jürgen", "pässwörd"),
        ("colon", "a:b$c"),
    ];
    for (user, password) in good {
        assert!(f.verify(user, password.as_bytes()), "{user}");
        assert!(!f.verify(user, b"wrong"), "{user} with a wrong password");
        assert!(!f.verify(user, format!("{password}x").as_bytes()), "{user}");
        assert!(!f.verify(user, b""), "{user} with an empty password");
    }
    assert!(!f.verify("alice", b"Secret"));
    assert!(!f.verify("alice", b"oldpass"), "another user's password");
    assert!(!f.verify("nobody", b"secret"), "unknown user");
    assert!(!f.verify("", b"secret"));
    assert!(
        !f.verify("ALICE", b"secret"),
        "user names are case-sensitive"
    );

    let py = PasswordFile::load(&fixture("passwd-python-sha512")).unwrap();
    assert!(py.verify("py6", b"pypass"));
    assert!(!py.verify("py6", b"pypass2"));
}

/// `$6$` lines made with Python's hashlib as mosquitto computes them.
#[test]
fn sha512_lines_from_python_hashlib() {
    if skip("python $6$ generation", "python3") {
        return;
    }
    let script = "import hashlib,base64,os,sys\n\
        for i, pw in enumerate(sys.argv[1:]):\n\
        \x20   s = os.urandom(12)\n\
        \x20   h = hashlib.sha512(pw.encode() + s).digest()\n\
        \x20   print('u%d:$6$%s$%s' % (i, base64.b64encode(s).decode(), base64.b64encode(h).decode()))\n";
    let passwords = ["p", "with space", "ünï€ode", "$6$tricky$"];
    let mut args = vec!["-c", script];
    args.extend(passwords);
    let out = run("python3", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = PasswordFile::parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
    for (i, pw) in passwords.iter().enumerate() {
        let user = format!("u{i}");
        assert!(f.verify(&user, pw.as_bytes()), "{user}");
        assert!(!f.verify(&user, b"nope"), "{user}");
    }
}

#[test]
fn fresh_files_from_mosquitto_passwd() {
    if skip("fresh mosquitto_passwd files", "mosquitto_passwd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    let file_s = file.to_str().unwrap();
    let users: [(&[&str], &str, &str); 4] = [
        (&["-c"], "p7", "pbkdf2 password"),
        (&["-H", "sha512"], "p6", "sha512 password"),
        (&["-H", "sha512-pbkdf2", "-I", "7"], "p7i", "seven"),
        (&[], "x y", "spaced user"),
    ];
    for (flags, user, password) in users {
        let mut args = flags.to_vec();
        args.extend(["-b", file_s, user, password]);
        let out = run("mosquitto_passwd", &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The exact format: user:$7$101$<16 base64 chars>$<88 base64 chars>, $6$ without count.
    let fields: Vec<&str> = lines[0].split('$').collect();
    assert_eq!(fields[..3], ["p7:", "7", "101"], "{}", lines[0]);
    assert_eq!((fields[3].len(), fields[4].len()), (16, 88));
    let fields: Vec<&str> = lines[1].split('$').collect();
    assert_eq!(fields[..2], ["p6:", "6"], "{}", lines[1]);
    assert_eq!((fields[2].len(), fields[3].len()), (16, 88));
    assert!(lines[2].starts_with("p7i:$7$7$"), "{}", lines[2]);

    let f = PasswordFile::parse(&text).unwrap();
    for (_, user, password) in users {
        assert!(f.verify(user, password.as_bytes()), "{user}");
        assert!(!f.verify(user, b"pbkdf2 passwor"), "{user}");
    }
    assert!(!f.verify("x", b"spaced user"));
}

#[test]
fn malformed_files_name_the_line() {
    let good = std::fs::read_to_string(fixture("passwd")).unwrap();
    let first = good.lines().next().unwrap();
    let cases = [
        (
            format!("# comment\n\n{first}\nbob\n"),
            "line 4: expected `user:hash`",
        ),
        (
            format!("{first}\nbob:secret\n"),
            "line 2: user \"bob\": not a mosquitto",
        ),
        (
            format!("{first}\n{first}\n"),
            "line 2: user \"alice\" already defined on line 1",
        ),
        (
            "a:$7$101$abc$def\n".to_string(),
            "line 1: user \"a\": salt is",
        ),
        (
            "a:$1$abc$def\n".to_string(),
            "line 1: user \"a\": unsupported hash type $1$",
        ),
    ];
    for (text, want) in cases {
        let e = PasswordFile::parse(&text).unwrap_err().to_string();
        assert!(e.starts_with(want), "{e:?} should start with {want:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken");
    std::fs::write(&p, "\n\nx:y\n").unwrap();
    let e = PasswordFile::load(&p).unwrap_err();
    assert!(matches!(e, PasswdError::Syntax { line: 3, .. }), "{e:?}");
    assert!(e
        .to_string()
        .starts_with(&format!("{}: line 3: ", p.display())));
    let e = PasswordFile::load(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(e, PasswdError::Io { .. }), "{e:?}");
}

// ---------------------------------------------------------------------------------------
// junction passwd

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn junction_passwd_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    let f = file.to_str().unwrap();
    let ok = |out: Output| {
        assert!(
            out.status.success(),
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let fails = |out: Output, needle: &str| {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    };

    // Without -c the file must exist.
    fails(
        junction(&["passwd", f, "alice", "--password", "a"], None),
        "-c",
    );
    ok(junction(
        &["passwd", "-c", f, "alice", "--password", "secret"],
        None,
    ));
    assert_eq!(mode(&file), 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("alice:$7$101$") && text.ends_with("==\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);

    // Password from stdin (first line; CRLF tolerated), add and update.
    ok(junction(&["passwd", f, "bob"], Some("bob pw\r\nignored\n")));
    ok(junction(&["passwd", f, "carol"], Some("carol-pw")));
    ok(junction(&["passwd", f, "alice"], Some("changed\n")));
    let pw = PasswordFile::load(&file).unwrap();
    assert_eq!(pw.users().collect::<Vec<_>>(), ["alice", "bob", "carol"]);
    assert!(pw.verify("alice", b"changed") && !pw.verify("alice", b"secret"));
    assert!(pw.verify("bob", b"bob pw") && pw.verify("carol", b"carol-pw"));
    assert_eq!(mode(&file), 0o600);

    // Delete.
    ok(junction(&["passwd", "-D", f, "carol"], None));
    fails(junction(&["passwd", "-D", f, "carol"], None), "not found");
    let pw = PasswordFile::load(&file).unwrap();
    assert_eq!(pw.users().collect::<Vec<_>>(), ["alice", "bob"]);

    // Errors: exit 1 and a message; the file is left alone.
    let before = std::fs::read(&file).unwrap();
    fails(
        junction(&["passwd", "-c", "-D", f, "bob"], None),
        "-c and -D",
    );
    fails(
        junction(&["passwd", "-D", f, "bob", "--password", "x"], None),
        "-D and --password",
    );
    fails(
        junction(&["passwd", f, "a:b", "--password", "x"], None),
        "':'",
    );
    fails(junction(&["passwd", f, "dave"], Some("")), "no password");
    fails(junction(&["passwd", f, "dave"], Some("\n")), "empty");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary files left: {names:?}");

    // -c overwrites.
    ok(junction(
        &["passwd", "-c", f, "eve", "--password", "e"],
        None,
    ));
    let pw = PasswordFile::load(&file).unwrap();
    assert_eq!(pw.users().collect::<Vec<_>>(), ["eve"]);

    // A file junction wrote is one mosquitto_passwd can update and delete from, and the
    // reverse.
    if !skip("mosquitto_passwd on junction's file", "mosquitto_passwd") {
        ok(run("mosquitto_passwd", &["-b", f, "mq", "mqpass"]));
        ok(run("mosquitto_passwd", &["-D", f, "eve"]));
        ok(junction(&["passwd", f, "after"], Some("afterpass")));
        let pw = PasswordFile::load(&file).unwrap();
        assert_eq!(pw.users().collect::<Vec<_>>(), ["mq", "after"]);
        assert!(pw.verify("mq", b"mqpass") && pw.verify("after", b"afterpass"));
    }
}

// ---------------------------------------------------------------------------------------
// A real mosquitto broker

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A mosquitto broker on a free loopback port, stopped on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Mosquitto {
    fn start(dir: &Path, settings: &str) -> Mosquitto {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        let log = dir.join("mosquitto.log");
        let mut text = format!("listener {port} 127.0.0.1\n{settings}\n");
        if running_as_root() {
            // Else mosquitto drops to user `mosquitto`, which cannot read our 0600 files.
            text.push_str("user root\n");
        }
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start mosquitto");
        let mut m = Mosquitto { child, port, log };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("mosquitto exited ({status}): {}", m.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto not listening: {}",
                m.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `mosquitto_pub` with these credentials; whether the broker accepted it.
    fn publish_as(&self, user: &str, password: &str) -> bool {
        let port = self.port.to_string();
        let out = run(
            "mosquitto_pub",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-u",
                user,
                "-P",
                password,
                "-t",
                "t",
                "-m",
                "m",
                "-q",
                "1",
            ],
        );
        out.status.success()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mosquitto_accepts_junction_passwd_files() {
    if skip("broker check of junction passwd", "mosquitto")
        || skip("broker check of junction passwd", "mosquitto_pub")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");
    let f = file.to_str().unwrap();
    let out = junction(&["passwd", "-c", f, "jalice", "--password", "s3cret"], None);
    assert!(out.status.success(), "{out:?}");
    let out = junction(&["passwd", f, "jbob"], Some("p@ss:w0rd $x\n"));
    assert!(out.status.success(), "{out:?}");
    // The mosquitto_passwd fixture and the Python $6$ line in the same file.
    let mut text = std::fs::read_to_string(&file).unwrap();
    text += &std::fs::read_to_string(fixture("passwd")).unwrap();
    text += &std::fs::read_to_string(fixture("passwd-python-sha512")).unwrap();
    std::fs::write(&file, &text).unwrap();
    let ours = PasswordFile::load(&file).unwrap();

    let broker = Mosquitto::start(
        dir.path(),
        &format!("allow_anonymous false\npassword_file {f}"),
    );
    let cases = [
        ("jalice", "s3cret", true),
        ("jalice", "s3cret ", false),
        ("jalice", "secret", false),
        ("alice", "secret", true),
        ("alice", "s3cret", false),
        ("jbob", "p@ss:w0rd $x", true),
        ("jbob", "p@ss:w0rd", false),
        ("bob", "correct horse battery staple", true),
        ("old", "oldpass", true),
        ("iter", "iterpass", true),
        ("colon", "a:b$c", true),
        ("py6", "pypass", true),
        ("py6", "pypas", false),
        ("nobody", "s3cret", false),
    ];
    for (user, password, accepted) in cases {
        assert_eq!(
            broker.publish_as(user, password),
            accepted,
            "mosquitto, {user}/{password}: {}",
            broker.log_text()
        );
        assert_eq!(
            ours.verify(user, password.as_bytes()),
            accepted,
            "ours, {user}/{password}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// ACL files

const ACL: &str = "\
# anonymous clients
topic read public/#
topic write anon/in
topic deny public/hidden

user alice
topic readwrite alice/#
topic deny alice/secret
topic read shared/+/status
topic write shared/cmd
topic shared/rw

user admin
topic readwrite #

# patterns apply to everybody
pattern read sentinel/%c
pattern readwrite clients/%c/#
pattern read users/%u/inbox
pattern write users/%u/outbox
pattern deny alice/blocked
pattern deny clients/%c/private
pattern deny public/nopattern
";

const PROBES: &[&str] = &[
    "public/x",
    "public/hidden",
    "public/nopattern",
    "anon/in",
    "alice/a",
    "alice/a/b",
    "alice/secret",
    "alice/blocked",
    "shared/x/status",
    "shared/x/other",
    "shared/cmd",
    "shared/rw",
    "clients/c-alice/t",
    "clients/c-bob/t",
    "clients/anon1/t",
    "clients/c-alice/private",
    "clients/anon1/private",
    "users/alice/inbox",
    "users/alice/outbox",
    "users/bob/inbox",
    "users/bob/outbox",
    "users/%u/inbox",
    "other",
];

/// (username, client id); every user's password is `pw-<user>`.
const IDENTITIES: &[(Option<&str>, &str)] = &[
    (None, "anon1"),
    (Some("alice"), "c-alice"),
    (Some("bob"), "c-bob"),
];

#[test]
fn acl_matrix() {
    let acl = AclFile::parse(ACL).unwrap();
    let expect = |user: Option<&str>, cid: &str, access: Access| -> Vec<&str> {
        PROBES
            .iter()
            .copied()
            .filter(|t| acl.check(user, cid, t, access))
            .collect()
    };
    let anon = (None, "anon1");
    let alice = (Some("alice"), "c-alice");
    let bob = (Some("bob"), "c-bob");
    assert_eq!(
        expect(anon.0, anon.1, Access::Read),
        ["public/x", "public/nopattern", "clients/anon1/t"]
    );
    assert_eq!(
        expect(anon.0, anon.1, Access::Write),
        ["anon/in", "clients/anon1/t"]
    );
    assert_eq!(
        expect(alice.0, alice.1, Access::Read),
        [
            "alice/a",
            "alice/a/b",
            "alice/blocked",
            "shared/x/status",
            "shared/rw",
            "clients/c-alice/t",
            "users/alice/inbox"
        ]
    );
    assert_eq!(
        expect(alice.0, alice.1, Access::Write),
        [
            "alice/a",
            "alice/a/b",
            "alice/blocked",
            "shared/cmd",
            "shared/rw",
            "clients/c-alice/t",
            "users/alice/outbox"
        ]
    );
    assert_eq!(
        expect(bob.0, bob.1, Access::Read),
        ["clients/c-bob/t", "users/bob/inbox"]
    );
    assert_eq!(
        expect(bob.0, bob.1, Access::Write),
        ["clients/c-bob/t", "users/bob/outbox"]
    );
    // Subscribe: filters covered by a read entry; deny entries refuse what they cover.
    let sub = |id: (Option<&str>, &str), f: &str| acl.check(id.0, id.1, f, Access::Subscribe);
    assert!(sub(alice, "alice/#") && sub(alice, "alice/+/b") && sub(alice, "shared/+/status"));
    assert!(!sub(alice, "alice/secret") && !sub(alice, "shared/#") && !sub(alice, "#"));
    assert!(sub(alice, "clients/c-alice/#") && !sub(alice, "clients/c-alice/private"));
    assert!(!sub(alice, "clients/+/t") && !sub(alice, "shared/cmd"));
    assert!(sub(anon, "public/#") && !sub(anon, "public/hidden") && !sub(anon, "anon/in"));
    assert!(sub(bob, "users/bob/inbox") && !sub(bob, "users/+/inbox"));
    assert!(sub((Some("admin"), "adm"), "#") && !sub((Some("admin"), "adm"), "$SYS/#"));
}

/// A connected rumqttc client whose incoming packets arrive on `rx`.
struct Client {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Result<Packet, String>>,
    /// Packets received but not consumed yet (while waiting for something else).
    stash: std::collections::VecDeque<Packet>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn connect(port: u16, client_id: &str, user: Option<&str>) -> Client {
        let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        if let Some(u) = user {
            opts.set_credentials(u, format!("pw-{u}"));
        }
        let (client, mut el) = AsyncClient::new(opts, 256);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(Ok(p)).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        let mut c = Client {
            client,
            rx,
            stash: Default::default(),
            task,
        };
        c.until(|p| matches!(p, Packet::ConnAck(_))).await;
        c
    }

    /// Waits for a packet for which `f` is true; returns it and the packets received
    /// before it.
    async fn until(&mut self, f: impl Fn(&Packet) -> bool) -> (Packet, Vec<Packet>) {
        let mut seen = Vec::new();
        while let Some(p) = self.stash.pop_front() {
            if f(&p) {
                return (p, seen);
            }
            seen.push(p);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Ok(p))) if f(&p) => return (p, seen),
                Ok(Some(Ok(p))) => seen.push(p),
                Ok(Some(Err(e))) => panic!("connection failed: {e}"),
                Ok(None) => panic!("event loop ended"),
                Err(_) => panic!("timed out; received {seen:?}"),
            }
        }
    }

    async fn subscribe(&mut self, filter: &str) -> SubscribeReasonCode {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        let (ack, others) = self.until(|p| matches!(p, Packet::SubAck(_))).await;
        self.stash.extend(others);
        match ack {
            Packet::SubAck(s) => {
                assert_eq!(s.return_codes.len(), 1);
                s.return_codes[0]
            }
            _ => unreachable!(),
        }
    }

    /// Publishes every topic at QoS 1 and waits for all PUBACKs (mosquitto acknowledges
    /// denied publishes too, after deciding).
    async fn publish_all(&mut self, topics: &[&str]) {
        for t in topics {
            self.client
                .publish(*t, QoS::AtLeastOnce, false, t.as_bytes().to_vec())
                .await
                .unwrap();
        }
        let mut acks = 0;
        while acks < topics.len() {
            let (_, others) = self.until(|p| matches!(p, Packet::PubAck(_))).await;
            self.stash.extend(others);
            acks += 1;
        }
    }

    /// Topics of the messages received until one on `sentinel` arrives.
    async fn received_until(&mut self, sentinel: &str) -> BTreeSet<String> {
        let (_, packets) = self
            .until(|p| matches!(p, Packet::Publish(m) if m.topic == sentinel))
            .await;
        packets
            .into_iter()
            .filter_map(|p| match p {
                Packet::Publish(m) => Some(m.topic),
                _ => None,
            })
            .collect()
    }

    async fn close(self) {
        let _ = self.client.disconnect().await;
        self.task.abort();
    }
}

/// The same ACL file in a live mosquitto: what each identity may publish (seen by `admin`,
/// subscribed to `#`) and receive (published by `admin`; the identity subscribed to `#`,
/// which mosquitto grants whatever the ACL says) must be what `AclFile::check` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_decisions_match_live_mosquitto() {
    if skip("live ACL comparison", "mosquitto") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    let aclf = dir.path().join("acl");
    update_password_file(
        &pw,
        "admin",
        PasswdChange::Create {
            password: b"pw-admin",
        },
    )
    .unwrap();
    for u in ["alice", "bob"] {
        let p = format!("pw-{u}");
        update_password_file(
            &pw,
            u,
            PasswdChange::Set {
                password: p.as_bytes(),
            },
        )
        .unwrap();
    }
    std::fs::write(&aclf, ACL).unwrap();
    let acl = AclFile::load(&aclf).unwrap();
    let broker = Mosquitto::start(
        dir.path(),
        &format!(
            "allow_anonymous true\npassword_file {}\nacl_file {}",
            pw.display(),
            aclf.display()
        ),
    );

    let mut admin = Client::connect(broker.port, "adm", Some("admin")).await;
    assert!(matches!(
        admin.subscribe("#").await,
        SubscribeReasonCode::Success(_)
    ));
    let mut mismatches = Vec::new();
    for (round, &(user, cid)) in IDENTITIES.iter().enumerate() {
        let mut me = Client::connect(broker.port, cid, user).await;

        // Write: what reaches admin.
        me.publish_all(PROBES).await;
        let sentinel = format!("done/{round}");
        admin.publish_all(&[&sentinel]).await;
        let got = admin.received_until(&sentinel).await;
        let want: BTreeSet<String> = PROBES
            .iter()
            .filter(|t| acl.check(user, cid, t, Access::Write))
            .map(|t| t.to_string())
            .collect();
        if got != want {
            mismatches.push(format!(
                "{user:?}/{cid} write: mosquitto {got:?}, ours {want:?}"
            ));
        }

        // Read: what reaches the identity. mosquitto's acl_file never refuses a SUBSCRIBE
        // (ours would refuse `#` here); it filters at delivery.
        let code = me.subscribe("#").await;
        if !matches!(code, SubscribeReasonCode::Success(_)) {
            mismatches.push(format!("{user:?}/{cid}: mosquitto refused `#`: {code:?}"));
        }
        assert!(!acl.check(user, cid, "#", Access::Subscribe));
        let sentinel = format!("sentinel/{cid}");
        assert!(acl.check(user, cid, &sentinel, Access::Read));
        let mut topics: Vec<&str> = PROBES.to_vec();
        topics.push(&sentinel);
        admin.publish_all(&topics).await;
        let got = me.received_until(&sentinel).await;
        let want: BTreeSet<String> = PROBES
            .iter()
            .filter(|t| acl.check(user, cid, t, Access::Read))
            .map(|t| t.to_string())
            .collect();
        if got != want {
            mismatches.push(format!(
                "{user:?}/{cid} read: mosquitto {got:?}, ours {want:?}"
            ));
        }
        // Drain admin's copies of its own probes before the next round.
        let drain = format!("drain/{round}");
        admin.publish_all(&[&drain]).await;
        admin.received_until(&drain).await;
        me.close().await;
    }
    admin.close().await;
    assert!(
        mismatches.is_empty(),
        "{}\n{}",
        mismatches.join("\n"),
        broker.log_text()
    );
}
