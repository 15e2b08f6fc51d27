//! Downloads against a local mirror (a `tiny_http` server on 127.0.0.1 serving zips built here),
//! MRPC formatting against the official files when `GLUE_DIR` is set, and the official row
//! counts against the real data.

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use stilts_data::download::{
    DownloadConfig, DownloadReport, Progress, SOURCES, Verification, count_rows, download,
    format_mrpc,
};
use stilts_data::{BuiltinTask, DataError, LoadOptions};

const SERVER_LIFETIME: Duration = Duration::from_secs(120);

/// A local HTTP mirror: serves `files` by name, answers 503 to the first `fail_first[name]`
/// requests for a name, 404 for unknown names. Stops when dropped or after two minutes.
struct Mirror {
    base: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<String>>>,
    handle: Option<JoinHandle<()>>,
}

impl Mirror {
    fn start(files: HashMap<String, Vec<u8>>, fail_first: HashMap<String, u32>) -> Mirror {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stop2, log2) = (stop.clone(), log.clone());
        let handle = std::thread::spawn(move || {
            let mut fail_first = fail_first;
            let started = Instant::now();
            while !stop2.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME {
                let request = match server.recv_timeout(Duration::from_millis(50)) {
                    Ok(Some(request)) => request,
                    Ok(None) => continue,
                    Err(_) => break,
                };
                let name = request.url().trim_start_matches('/').to_owned();
                log2.lock().expect("log lock").push(name.clone());
                let failures = fail_first.entry(name.clone()).or_insert(0);
                let response = if *failures > 0 {
                    *failures -= 1;
                    tiny_http::Response::from_string("busy").with_status_code(503)
                } else if let Some(body) = files.get(&name) {
                    tiny_http::Response::from_data(body.clone())
                } else {
                    tiny_http::Response::from_string("no such file").with_status_code(404)
                };
                let _ = request.respond(response);
            }
        });
        Mirror {
            base: format!("http://127.0.0.1:{port}"),
            stop,
            log,
            handle: Some(handle),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    fn clear(&self) {
        self.log.lock().expect("log lock").clear();
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Start(String, Option<u64>),
    Advance(u64),
    Finish,
    Note(String),
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Recorder {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().expect("recorder lock"))
    }
}

impl Progress for Recorder {
    fn start(&self, what: &str, total: Option<u64>) {
        let mut events = self.0.lock().expect("recorder lock");
        events.push(Event::Start(what.to_owned(), total));
    }
    fn advance(&self, bytes: u64) {
        self.0
            .lock()
            .expect("recorder lock")
            .push(Event::Advance(bytes));
    }
    fn finish(&self) {
        self.0.lock().expect("recorder lock").push(Event::Finish);
    }
    fn note(&self, message: &str) {
        let mut events = self.0.lock().expect("recorder lock");
        events.push(Event::Note(message.to_owned()));
    }
}

fn make_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in entries {
        if name.ends_with('/') {
            writer.add_directory(*name, options).expect("zip dir");
        } else {
            writer.start_file(*name, options).expect("zip entry");
            writer.write_all(data).expect("zip write");
        }
    }
    writer.finish().expect("zip finish").into_inner()
}

const RTE_TRAIN: &str = "index\tsentence1\tsentence2\tlabel\n\
0\tNo Weapons of Mass Destruction Found in Iraq Yet.\tWeapons of Mass Destruction Found in Iraq.\tnot_entailment\n\
1\tHerceptin was already approved to treat the sickest breast cancer patients.\tHerceptin can be used to treat breast cancer.\tentailment\n\
2\tJudie Vivian, chief executive at ProMedica, a medical service company.\tThe previous name of Ho Chi Minh City was Saigon.\tnot_entailment\n";
const RTE_DEV: &str = "index\tsentence1\tsentence2\tlabel\n\
0\tDana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44.\tChristopher Reeve had an accident.\tnot_entailment\n\
1\tYet, we now are discovering that antibiotics are losing their effectiveness.\tBacteria is winning the war against antibiotics.\tentailment\n";
const RTE_TEST: &str = "index\tsentence1\tsentence2\n\
0\tMangla was summoned after Madhumita's sister Nidhi Shukla, who was the first witness in the case.\tShukla is related to Mangla.\n";
const COLA_TRAIN: &str = "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\n\
gj04\t0\t*\tThey drank the pub.\n";
const COLA_DEV: &str = "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.";
const COLA_TEST: &str = "index\tsentence\n0\tBill whistled past the house.\n";
const AX_TSV: &str = "index\tsentence1\tsentence2\n\
0\tThe cat sat on the mat.\tThe cat did not sit on the mat.\n\
1\tThe cat did not sit on the mat.\tThe cat sat on the mat.\n";
const MRPC_HEADER: &str = "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String";
const MRPC_TRAIN_ROWS: [&str; 3] = [
    "1\t702876\t702977\tAmrozi accused his brother of deliberately distorting his evidence.\tReferring to him only as \"the witness\", Amrozi accused his brother.",
    "0\t2108705\t2108831\tYucaipa owned Dominick's before selling the chain to Safeway in 1998.\tYucaipa bought Dominick's in 1995.",
    "1\t1330381\t1330521\tThey had published an advertisement on the Internet on June 10.\tOn June 10, the ship's owners had published an advertisement.",
];
const MRPC_TEST_ROWS: [&str; 2] = [
    "1\t1089874\t1089925\tPCCW's chief operating officer will report directly to Mr So.\tCurrent Chief Operating Officer Mike Butcher will report to So.",
    "0\t3019446\t3019327\tThe world's two largest automakers said their U.S. sales declined.\tDomestic sales at both GM and No. 2 Ford Motor Co. declined.",
];

fn glue_dir() -> Option<PathBuf> {
    std::env::var_os("GLUE_DIR").map(PathBuf::from)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The three raw MRPC files: the real ones from `GLUE_DIR` when set, else small synthetic ones
/// (CRLF line endings, trailing blanks, the BOM header). The bool says which.
fn mrpc_raw() -> (Vec<u8>, Vec<u8>, Vec<u8>, bool) {
    if let Some(dir) = glue_dir() {
        let dir = dir.join("MRPC");
        return (
            read(&dir.join("msr_paraphrase_train.txt")),
            read(&dir.join("msr_paraphrase_test.txt")),
            read(&dir.join("dev_ids.tsv")),
            true,
        );
    }
    let (train, test, ids) = synthetic_mrpc();
    (
        train.into_bytes(),
        test.into_bytes(),
        ids.into_bytes(),
        false,
    )
}

fn synthetic_mrpc() -> (String, String, String) {
    let mut train = format!("{MRPC_HEADER}\r\n");
    for row in MRPC_TRAIN_ROWS {
        train.push_str(row);
        train.push_str(" \r\n");
    }
    let mut test = format!("{MRPC_HEADER}\r\n");
    for row in MRPC_TEST_ROWS {
        test.push_str(row);
        test.push_str("\r\n");
    }
    (train, test, "2108705\t2108831\n999\t1000\n".to_owned())
}

fn mirror_files() -> (HashMap<String, Vec<u8>>, bool) {
    let (mrpc_train, mrpc_test, mrpc_ids, real_mrpc) = mrpc_raw();
    let mut files = HashMap::new();
    files.insert(
        "RTE.zip".to_owned(),
        make_zip(&[
            ("RTE/", b""),
            ("RTE/train.tsv", RTE_TRAIN.as_bytes()),
            ("RTE/dev.tsv", RTE_DEV.as_bytes()),
            ("RTE/test.tsv", RTE_TEST.as_bytes()),
            ("__MACOSX/RTE/._train.tsv", b"\0\x05\x16\x07junk"),
        ]),
    );
    files.insert(
        "CoLA.zip".to_owned(),
        make_zip(&[
            ("CoLA/train.tsv", COLA_TRAIN.as_bytes()),
            ("CoLA/dev.tsv", COLA_DEV.as_bytes()),
            ("CoLA/test.tsv", COLA_TEST.as_bytes()),
            (
                "CoLA/original/raw/in_domain_train.tsv",
                COLA_TRAIN.as_bytes(),
            ),
        ]),
    );
    files.insert("AX.tsv".to_owned(), AX_TSV.as_bytes().to_vec());
    files.insert("msr_paraphrase_train.txt".to_owned(), mrpc_train);
    files.insert("msr_paraphrase_test.txt".to_owned(), mrpc_test);
    files.insert("mrpc_dev_ids.tsv".to_owned(), mrpc_ids);
    (files, real_mrpc)
}

fn config(data_dir: PathBuf, base: &str, tasks: &[BuiltinTask]) -> DownloadConfig {
    let mut cfg = DownloadConfig::new(data_dir);
    cfg.tasks = tasks.to_vec();
    cfg.base_url = Some(base.to_owned());
    cfg.retries = 2;
    cfg.retry_delay = Duration::from_millis(10);
    cfg.timeout = Duration::from_secs(10);
    cfg
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != ".stilts-locks")
        .collect();
    names.sort();
    names
}

fn rows(report: &DownloadReport, split: &str) -> usize {
    report
        .splits
        .iter()
        .find(|s| s.split == split)
        .unwrap_or_else(|| panic!("{} has no split {split}", report.task))
        .examples
}

#[test]
fn download_from_local_mirror() {
    let (files, real_mrpc) = mirror_files();
    let sizes: HashMap<String, u64> = files
        .iter()
        .map(|(k, v)| (k.clone(), v.len() as u64))
        .collect();
    let mirror = Mirror::start(files, HashMap::from([("CoLA.zip".to_owned(), 1)]));
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("glue");
    let tasks = [
        BuiltinTask::Rte,
        BuiltinTask::Mrpc,
        BuiltinTask::Cola,
        BuiltinTask::Ax,
        BuiltinTask::Rte,
    ];
    let mut cfg = config(data.clone(), &mirror.base, &tasks);
    let progress = Recorder::default();

    let reports = download(&cfg, &progress).expect("download from the mirror");
    let got: Vec<BuiltinTask> = reports.iter().map(|r| r.task).collect();
    assert_eq!(got, &tasks[..4]);
    assert!(reports.iter().all(|r| r.downloaded));

    assert_eq!(entries(&data), ["CoLA", "MRPC", "RTE", "diagnostic"]);
    assert_eq!(
        entries(&data.join("RTE")),
        ["dev.tsv", "test.tsv", "train.tsv"]
    );
    assert_eq!(
        entries(&data.join("CoLA")),
        ["dev.tsv", "original", "test.tsv", "train.tsv"]
    );
    assert_eq!(entries(&data.join("diagnostic")), ["diagnostic.tsv"]);
    assert_eq!(
        entries(&data.join("MRPC")),
        [
            "dev.tsv",
            "dev_ids.tsv",
            "msr_paraphrase_test.txt",
            "msr_paraphrase_train.txt",
            "test.tsv",
            "train.tsv"
        ]
    );
    assert_eq!(read(&data.join("RTE/train.tsv")), RTE_TRAIN.as_bytes());
    assert_eq!(
        read(&data.join("diagnostic/diagnostic.tsv")),
        AX_TSV.as_bytes()
    );

    let rte = BuiltinTask::Rte.task();
    let train = rte
        .load(&rte.dir_in(&data), "train", LoadOptions::default())
        .expect("RTE train loads");
    assert_eq!(train.len(), 3);
    assert_eq!(
        train.examples[1].text_b.as_deref(),
        Some("Herceptin can be used to treat breast cancer.")
    );
    let cola = BuiltinTask::Cola.task();
    assert_eq!(
        cola.load(&cola.dir_in(&data), "dev", LoadOptions::default())
            .expect("CoLA dev loads")
            .len(),
        1
    );
    let ax = BuiltinTask::Ax.task();
    assert_eq!(
        ax.load(&ax.dir_in(&data), "test", LoadOptions::default())
            .expect("AX test loads")
            .len(),
        2
    );

    let by_task = |t: BuiltinTask| reports.iter().find(|r| r.task == t).expect("report");
    let rte_report = by_task(BuiltinTask::Rte);
    assert_eq!(rte_report.dir, data.join("RTE"));
    assert_eq!(rte_report.bytes, sizes["RTE.zip"]);
    assert_eq!(rte_report.fetched.len(), 1);
    assert_eq!(
        rte_report.fetched[0].url,
        format!("{}/RTE.zip", mirror.base)
    );
    assert_eq!(
        rte_report.files,
        [
            PathBuf::from("dev.tsv"),
            PathBuf::from("test.tsv"),
            PathBuf::from("train.tsv")
        ]
    );
    assert_eq!(
        (
            rows(rte_report, "train"),
            rows(rte_report, "dev"),
            rows(rte_report, "test")
        ),
        (3, 2, 1)
    );
    let Verification::Mismatch(problems) = &rte_report.verification else {
        panic!("tiny RTE must not match the official counts: {rte_report:?}");
    };
    assert!(
        problems.contains(&"train: 3 examples, official release has 2490".to_owned()),
        "{problems:?}"
    );
    let ax_report = by_task(BuiltinTask::Ax);
    assert_eq!(ax_report.files, [PathBuf::from("diagnostic.tsv")]);
    assert_eq!(rows(ax_report, "test"), 2);

    let mrpc_report = by_task(BuiltinTask::Mrpc);
    assert_eq!(mrpc_report.fetched.len(), 3);
    if real_mrpc {
        assert_eq!(mrpc_report.verification, Verification::Matched);
        let official = glue_dir().expect("GLUE_DIR").join("MRPC");
        for name in ["train.tsv", "dev.tsv", "test.tsv"] {
            assert!(
                read(&data.join("MRPC").join(name)) == read(&official.join(name)),
                "MRPC/{name} differs from the official file"
            );
        }
    } else {
        assert_eq!(
            (
                rows(mrpc_report, "train"),
                rows(mrpc_report, "dev"),
                rows(mrpc_report, "test")
            ),
            (2, 1, 2)
        );
    }

    let requests = mirror.requests();
    assert_eq!(
        requests.iter().filter(|r| *r == "CoLA.zip").count(),
        2,
        "CoLA.zip answered 503 once and was retried: {requests:?}"
    );
    assert_eq!(requests.iter().filter(|r| *r == "RTE.zip").count(), 1);

    let events = progress.take();
    let starts = events
        .iter()
        .filter(|e| matches!(e, Event::Start(..)))
        .count();
    let finishes = events.iter().filter(|e| **e == Event::Finish).count();
    assert_eq!(starts, finishes, "{events:?}");
    assert!(
        events.contains(&Event::Start("RTE.zip".into(), Some(sizes["RTE.zip"]))),
        "{events:?}"
    );
    assert!(events.contains(&Event::Start("AX.tsv".into(), Some(sizes["AX.tsv"]))));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Start(w, _) if w.starts_with("unpacking")))
    );
    let downloaded: u64 = sizes.values().sum();
    let advanced: u64 = events
        .iter()
        .map(|e| if let Event::Advance(n) = e { *n } else { 0 })
        .sum();
    assert!(advanced >= downloaded, "{advanced} < {downloaded}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Note(n) if n.contains("CoLA.zip") && n.contains("503"))),
        "the retry is announced: {events:?}"
    );

    mirror.clear();
    let again = download(&cfg, &progress).expect("second run");
    assert!(again.iter().all(|r| !r.downloaded && r.bytes == 0));
    assert_eq!(mirror.requests(), Vec::<String>::new());
    assert_eq!(
        again
            .iter()
            .map(|r| r.verification.clone())
            .collect::<Vec<_>>(),
        reports
            .iter()
            .map(|r| r.verification.clone())
            .collect::<Vec<_>>()
    );
    assert!(
        progress
            .take()
            .iter()
            .any(|e| matches!(e, Event::Note(n) if n.contains("RTE") && n.contains("skipped")))
    );

    std::fs::write(data.join("RTE/stale.txt"), "old").expect("write stale file");
    std::fs::write(data.join("diagnostic/notes.txt"), "mine").expect("write notes");
    cfg.tasks = vec![BuiltinTask::Rte, BuiltinTask::Ax];
    cfg.force = true;
    let forced = download(&cfg, &progress).expect("forced run");
    assert!(forced.iter().all(|r| r.downloaded));
    assert_eq!(mirror.requests(), ["RTE.zip", "AX.tsv"]);
    assert_eq!(
        entries(&data.join("RTE")),
        ["dev.tsv", "test.tsv", "train.tsv"]
    );
    assert_eq!(
        entries(&data.join("diagnostic")),
        ["diagnostic.tsv", "notes.txt"]
    );
    assert_eq!(entries(&data), ["CoLA", "MRPC", "RTE", "diagnostic"]);

    cfg.force = false;
    cfg.strict = true;
    cfg.tasks = vec![BuiltinTask::Rte];
    match download(&cfg, &progress) {
        Err(DataError::Verify { task, problems }) => {
            assert_eq!(task, "RTE");
            assert!(problems.iter().any(|p| p.contains("2490")), "{problems:?}");
        }
        other => panic!("strict verification must fail on tiny RTE: {other:?}"),
    }
    cfg.verify = false;
    let unchecked = download(&cfg, &progress).expect("strict without verification");
    assert_eq!(unchecked[0].verification, Verification::NotChecked);
}

#[test]
fn missing_file_and_server_errors_name_the_url() {
    let mirror = Mirror::start(
        HashMap::from([("RTE.zip".to_owned(), make_zip(&[("RTE/train.tsv", b"x")]))]),
        HashMap::from([("RTE.zip".to_owned(), 100)]),
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("glue");
    let cfg = config(data.clone(), &mirror.base, &[BuiltinTask::Wnli]);

    let err = download(&cfg, &Recorder::default()).expect_err("WNLI.zip is not served");
    let url = format!("{}/WNLI.zip", mirror.base);
    match &err {
        DataError::Download { url: u, message } => {
            assert_eq!(u, &url);
            assert!(message.contains("404"), "{message}");
        }
        other => panic!("expected a download error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&url) && text.contains("404"), "{text}");
    assert_eq!(mirror.requests(), ["WNLI.zip"], "a 404 is not retried");
    assert_eq!(
        entries(&data),
        Vec::<String>::new(),
        "nothing is left behind"
    );

    mirror.clear();
    let cfg = config(data.clone(), &mirror.base, &[BuiltinTask::Rte]);
    let err = download(&cfg, &NoisyNothing).expect_err("RTE.zip always answers 503");
    let text = err.to_string();
    assert!(
        text.contains("RTE.zip") && text.contains("503") && text.contains("3 attempts"),
        "{text}"
    );
    assert_eq!(mirror.requests().len(), 3, "1 try and 2 retries");
    assert_eq!(entries(&data), Vec::<String>::new());

    let mut cfg = config(data.clone(), "http://127.0.0.1:9", &[BuiltinTask::Rte]);
    cfg.urls.insert(
        "RTE.zip".into(),
        format!("{}/elsewhere/RTE.zip", mirror.base),
    );
    mirror.clear();
    let err = download(&cfg, &NoisyNothing).expect_err("override is 404");
    assert!(err.to_string().contains("/elsewhere/RTE.zip"), "{err}");
    assert_eq!(mirror.requests(), ["elsewhere/RTE.zip"]);
}

struct NoisyNothing;

impl Progress for NoisyNothing {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

#[test]
fn zip_entries_escaping_the_folder_are_rejected() {
    let evil = make_zip(&[
        ("WNLI/train.tsv", b"index\tsentence1\tsentence2\tlabel\n"),
        ("../evil", b"owned"),
    ]);
    let absolute = make_zip(&[
        ("RTE/train.tsv", b"x"),
        ("/tmp/stilts-absolute-evil", b"owned"),
    ]);
    let no_folder = make_zip(&[("train.tsv", b"x")]);
    let not_zip = b"<html>moved</html>".to_vec();
    let mirror = Mirror::start(
        HashMap::from([
            ("WNLI.zip".to_owned(), evil),
            ("RTE.zip".to_owned(), absolute),
            ("CoLA.zip".to_owned(), no_folder),
            ("SST-2.zip".to_owned(), not_zip),
        ]),
        HashMap::new(),
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("glue");

    let cases = [
        (BuiltinTask::Wnli, "../evil"),
        (BuiltinTask::Rte, "/tmp/stilts-absolute-evil"),
        (BuiltinTask::Cola, "no folder `CoLA/`"),
        (BuiltinTask::Sst2, "not a readable zip"),
    ];
    for (task, needle) in cases {
        let cfg = config(data.clone(), &mirror.base, &[task]);
        match download(&cfg, &NoisyNothing) {
            Err(DataError::Archive { message, .. }) => {
                assert!(message.contains(needle), "{task}: {message}")
            }
            other => panic!("{task}: expected an archive error, got {other:?}"),
        }
        assert_eq!(entries(&data), Vec::<String>::new(), "{task}: nothing kept");
    }
    assert!(!tmp.path().join("evil").exists());
    assert!(!Path::new("/tmp/stilts-absolute-evil").exists());
}

#[test]
fn snli_lands_in_the_snli_folder() {
    let line = |label: &str, id: &str| {
        format!(
            "{{\"gold_label\": \"{label}\", \"sentence1\": \"A person on a horse jumps.\", \"sentence2\": \"A person is outdoors.\", \"pairID\": \"{id}\"}}\n"
        )
    };
    let train = format!(
        "{}{}{}",
        line("entailment", "1"),
        line("-", "2"),
        line("neutral", "3")
    );
    let dev = line("contradiction", "4");
    let test = format!("{}{}", line("-", "5"), line("entailment", "6"));
    let archive = make_zip(&[
        ("snli_1.0/", b""),
        ("snli_1.0/README.txt", b"SNLI 1.0"),
        ("snli_1.0/snli_1.0_train.jsonl", train.as_bytes()),
        ("snli_1.0/snli_1.0_dev.jsonl", dev.as_bytes()),
        ("snli_1.0/snli_1.0_test.jsonl", test.as_bytes()),
        ("__MACOSX/snli_1.0/._snli_1.0_dev.jsonl", b"junk"),
    ]);
    let mirror = Mirror::start(
        HashMap::from([("snli_1.0.zip".to_owned(), archive)]),
        HashMap::new(),
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().to_owned();
    let cfg = config(data.clone(), &mirror.base, &[BuiltinTask::Snli]);
    let reports = download(&cfg, &NoisyNothing).expect("SNLI from the mirror");
    assert_eq!(entries(&data), ["SNLI"]);
    assert_eq!(
        entries(&data.join("SNLI")),
        [
            "README.txt",
            "snli_1.0_dev.jsonl",
            "snli_1.0_test.jsonl",
            "snli_1.0_train.jsonl"
        ]
    );
    let report = &reports[0];
    let counts: Vec<(String, usize, usize)> = report
        .splits
        .iter()
        .map(|s| (s.split.clone(), s.examples, s.unlabelled))
        .collect();
    assert_eq!(
        counts,
        [
            ("train".to_owned(), 2, 1),
            ("dev".to_owned(), 1, 0),
            ("test".to_owned(), 1, 1)
        ]
    );
    let Verification::Mismatch(problems) = &report.verification else {
        panic!("{report:?}");
    };
    assert!(problems.contains(&"train: 2 examples, official release has 549367".to_owned()));
    assert!(
        problems
            .contains(&"train: 1 rows without a gold label, official release has 785".to_owned())
    );
}

#[test]
fn format_mrpc_follows_the_script() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (train, test, ids) = synthetic_mrpc();
    let raw = tmp.path().join("raw");
    std::fs::create_dir(&raw).expect("mkdir");
    std::fs::write(raw.join("msr_paraphrase_train.txt"), train).expect("write");
    std::fs::write(raw.join("msr_paraphrase_test.txt"), test).expect("write");
    std::fs::write(raw.join("dev_ids.tsv"), ids).expect("write");
    let out = tmp.path().join("out");
    format_mrpc(&raw, &out).expect("format synthetic MRPC");

    let text = |name: &str| String::from_utf8(read(&out.join(name))).expect("utf-8");
    let header = format!("{MRPC_HEADER}\n");
    assert_eq!(
        text("train.tsv"),
        format!("{header}{}\n{}\n", MRPC_TRAIN_ROWS[0], MRPC_TRAIN_ROWS[2])
    );
    assert_eq!(text("dev.tsv"), format!("{header}{}\n", MRPC_TRAIN_ROWS[1]));
    assert!(read(&out.join("dev.tsv")).starts_with(b"\xef\xbb\xbfQuality\t"));
    assert_eq!(
        text("test.tsv"),
        "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n\
         0\t1089874\t1089925\tPCCW's chief operating officer will report directly to Mr So.\tCurrent Chief Operating Officer Mike Butcher will report to So.\n\
         1\t3019446\t3019327\tThe world's two largest automakers said their U.S. sales declined.\tDomestic sales at both GM and No. 2 Ford Motor Co. declined.\n"
    );
    let mrpc = BuiltinTask::Mrpc.task();
    let dev = mrpc
        .load(&out, "dev", LoadOptions::default())
        .expect("dev loads");
    assert_eq!(dev.examples[0].id, "0");
    assert_eq!(
        dev.examples[0].text_b.as_deref(),
        Some("Yucaipa bought Dominick's in 1995.")
    );

    std::fs::write(
        raw.join("msr_paraphrase_test.txt"),
        format!("{MRPC_HEADER}\n1\t2\t3\n"),
    )
    .expect("write");
    match format_mrpc(&raw, &out) {
        Err(DataError::Row { location, .. }) => {
            assert_eq!(location.line, 2);
            assert!(location.path.ends_with("msr_paraphrase_test.txt"));
        }
        other => panic!("a 3-field row must be an error: {other:?}"),
    }
    std::fs::remove_file(raw.join("dev_ids.tsv")).expect("remove");
    assert!(matches!(
        format_mrpc(&raw, &out),
        Err(DataError::MissingFile { .. })
    ));
}

#[test]
fn format_mrpc_reproduces_the_official_files() {
    let Some(glue) = glue_dir() else {
        println!("skipped: set GLUE_DIR");
        return;
    };
    let official = glue.join("MRPC");
    let tmp = tempfile::tempdir().expect("tempdir");
    let raw = tmp.path().join("raw");
    std::fs::create_dir(&raw).expect("mkdir");
    for name in [
        "msr_paraphrase_train.txt",
        "msr_paraphrase_test.txt",
        "dev_ids.tsv",
    ] {
        std::fs::write(raw.join(name), read(&official.join(name))).expect("copy raw file");
    }
    let out = tmp.path().join("out");
    format_mrpc(&raw, &out).expect("format the real MRPC files");
    for name in ["train.tsv", "dev.tsv", "test.tsv"] {
        let ours = read(&out.join(name));
        let theirs = read(&official.join(name));
        assert!(
            ours == theirs,
            "MRPC/{name}: {} bytes, official {} bytes; first difference at byte {:?}",
            ours.len(),
            theirs.len(),
            ours.iter().zip(&theirs).position(|(a, b)| a != b)
        );
    }
}

#[test]
fn official_counts_match_the_real_data() {
    let Some(glue) = glue_dir() else {
        println!("skipped: set GLUE_DIR");
        return;
    };
    let mut checked = Vec::new();
    for source in &SOURCES {
        let task = source.task;
        if !task.task().dir_in(&glue).is_dir() {
            continue;
        }
        let counted = count_rows(task, &glue).unwrap_or_else(|e| panic!("{task}: {e}"));
        for official in source.official {
            if let Some(got) = counted.iter().find(|r| r.split == official.split) {
                assert_eq!(
                    (got.examples, got.unlabelled),
                    (official.examples, official.unlabelled),
                    "{task} {}",
                    official.split
                );
                checked.push(format!("{task} {}", official.split));
            }
        }
    }
    assert!(
        checked.iter().any(|c| c == "MRPC train"),
        "GLUE_DIR holds no MRPC: {checked:?}"
    );
    assert!(checked.len() >= 10, "{checked:?}");
}

#[test]
fn concurrent_downloads_of_one_task_fetch_it_once() {
    let (files, _) = mirror_files();
    let mirror = Mirror::start(files, HashMap::new());
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("glue");
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let cfg = config(data.clone(), &mirror.base, &[BuiltinTask::Rte]);
            std::thread::spawn(move || download(&cfg, &stilts_data::download::NoProgress))
        })
        .collect();
    let mut fetched = 0;
    for worker in workers {
        let reports = worker.join().expect("no panic").expect("download");
        fetched += usize::from(reports[0].downloaded);
    }
    assert_eq!(fetched, 1, "one process fetches, the others find it there");
    assert_eq!(mirror.requests(), ["RTE.zip"]);
    assert_eq!(entries(&data), ["RTE"]);
    assert_eq!(entries(&data.join(".stilts-locks")), ["RTE.lock"]);
    assert_eq!(
        std::fs::read_to_string(data.join("RTE/train.tsv")).unwrap(),
        RTE_TRAIN
    );
}
