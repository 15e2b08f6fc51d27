//! Where each built-in task comes from ([`SOURCES`]) and what its official release holds.

use super::super::glue::BuiltinTask;

/// What becomes of a fetched file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpack {
    /// A zip holding the folder `folder` (`RTE/train.tsv`, ...). The folder becomes the task's
    /// directory; other top-level entries (`__MACOSX/`) are ignored.
    ZipFolder {
        /// The folder inside the zip (`RTE`).
        folder: &'static str,
    },
    /// Saved as `file` in the task's directory, next to whatever else is there.
    File {
        /// The file name in the task's directory.
        file: &'static str,
    },
}

/// One file to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// The file's name on a mirror (`RTE.zip`, `AX.tsv`) and its key in [`DownloadConfig::urls`](super::DownloadConfig::urls).
    pub name: &'static str,
    /// The official URL.
    pub url: &'static str,
    /// What becomes of it.
    pub unpack: Unpack,
}

/// A step run once every resource of a task is in its staged directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// No step: the resources are the task's files.
    Nothing,
    /// [`format_mrpc`](super::format_mrpc) on the staged MRPC directory (raw files in, `train/dev/test.tsv` out).
    FormatMrpc,
}

/// Row counts of one split of the official release, as [`crate::Task::load`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfficialSplit {
    /// The split's name.
    pub split: &'static str,
    /// Examples loaded.
    pub examples: usize,
    /// Rows skipped for having no gold label (SNLI's `-`).
    pub unlabelled: usize,
}

/// Where a built-in task comes from and what the official release holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSource {
    /// The task.
    pub task: BuiltinTask,
    /// The files to fetch, in order.
    pub resources: &'static [Resource],
    /// The step after fetching.
    pub finish: Finish,
    /// The splits the download produces, with their official row counts. A task directory is
    /// complete when all of them are present.
    pub official: &'static [OfficialSplit],
}

/// The tasks `download_glue_data.py` fetches by default: the nine GLUE tasks and the diagnostic.
pub const DEFAULT_TASKS: [BuiltinTask; 10] = [
    BuiltinTask::Cola,
    BuiltinTask::Sst2,
    BuiltinTask::Mrpc,
    BuiltinTask::Qqp,
    BuiltinTask::Stsb,
    BuiltinTask::Mnli,
    BuiltinTask::Qnli,
    BuiltinTask::Rte,
    BuiltinTask::Wnli,
    BuiltinTask::Ax,
];

/// Name of the MRPC training file as SentEval serves it and [`format_mrpc`](super::format_mrpc) reads it.
pub const MRPC_TRAIN_FILE: &str = "msr_paraphrase_train.txt";
/// Name of the MRPC test file as SentEval serves it and [`format_mrpc`](super::format_mrpc) reads it.
pub const MRPC_TEST_FILE: &str = "msr_paraphrase_test.txt";
/// Name of the GLUE MRPC dev id list (`id1<TAB>id2` per line) as [`format_mrpc`](super::format_mrpc) reads it.
pub const MRPC_DEV_IDS_FILE: &str = "dev_ids.tsv";

const fn zip(name: &'static str, url: &'static str, folder: &'static str) -> Resource {
    Resource {
        name,
        url,
        unpack: Unpack::ZipFolder { folder },
    }
}

const fn file(name: &'static str, url: &'static str, file: &'static str) -> Resource {
    Resource {
        name,
        url,
        unpack: Unpack::File { file },
    }
}

const fn split(split: &'static str, examples: usize) -> OfficialSplit {
    OfficialSplit {
        split,
        examples,
        unlabelled: 0,
    }
}

const fn tdt(train: usize, dev: usize, test: usize) -> [OfficialSplit; 3] {
    [
        split("train", train),
        split("dev", dev),
        split("test", test),
    ]
}

const COLA_COUNTS: [OfficialSplit; 3] = tdt(8551, 1043, 1063);
const SST2_COUNTS: [OfficialSplit; 3] = tdt(67349, 872, 1821);
const MRPC_COUNTS: [OfficialSplit; 3] = tdt(3668, 408, 1725);
const QQP_COUNTS: [OfficialSplit; 3] = tdt(363846, 40430, 390965);
const STSB_COUNTS: [OfficialSplit; 3] = tdt(5749, 1500, 1379);
const QNLI_COUNTS: [OfficialSplit; 3] = tdt(104743, 5463, 5463);
const RTE_COUNTS: [OfficialSplit; 3] = tdt(2490, 277, 3000);
const WNLI_COUNTS: [OfficialSplit; 3] = tdt(635, 71, 146);

/// Every built-in task's source, in [`BuiltinTask::ALL`] order. QQP is the cleaned release
/// (`QQP-clean.zip`, as the current script and the GLUE site use), whose counts these are.
pub const SOURCES: [TaskSource; 11] = [
    TaskSource {
        task: BuiltinTask::Cola,
        resources: &[zip(
            "CoLA.zip",
            "https://dl.fbaipublicfiles.com/glue/data/CoLA.zip",
            "CoLA",
        )],
        finish: Finish::Nothing,
        official: &COLA_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Sst2,
        resources: &[zip(
            "SST-2.zip",
            "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
            "SST-2",
        )],
        finish: Finish::Nothing,
        official: &SST2_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Mrpc,
        resources: &[
            file(
                MRPC_TRAIN_FILE,
                "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt",
                MRPC_TRAIN_FILE,
            ),
            file(
                MRPC_TEST_FILE,
                "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt",
                MRPC_TEST_FILE,
            ),
            file(
                "mrpc_dev_ids.tsv",
                "https://firebasestorage.googleapis.com/v0/b/mtl-sentence-representations.appspot.com/o/data%2Fmrpc_dev_ids.tsv?alt=media&token=ec5c0836-31d5-48f4-b431-7480817f1adc",
                MRPC_DEV_IDS_FILE,
            ),
        ],
        finish: Finish::FormatMrpc,
        official: &MRPC_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Qqp,
        resources: &[zip(
            "QQP-clean.zip",
            "https://dl.fbaipublicfiles.com/glue/data/QQP-clean.zip",
            "QQP",
        )],
        finish: Finish::Nothing,
        official: &QQP_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Stsb,
        resources: &[zip(
            "STS-B.zip",
            "https://dl.fbaipublicfiles.com/glue/data/STS-B.zip",
            "STS-B",
        )],
        finish: Finish::Nothing,
        official: &STSB_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Mnli,
        resources: &[zip(
            "MNLI.zip",
            "https://dl.fbaipublicfiles.com/glue/data/MNLI.zip",
            "MNLI",
        )],
        finish: Finish::Nothing,
        official: &[
            split("train", 392702),
            split("dev_matched", 9815),
            split("dev_mismatched", 9832),
            split("test_matched", 9796),
            split("test_mismatched", 9847),
        ],
    },
    TaskSource {
        task: BuiltinTask::Qnli,
        resources: &[zip(
            "QNLIv2.zip",
            "https://dl.fbaipublicfiles.com/glue/data/QNLIv2.zip",
            "QNLI",
        )],
        finish: Finish::Nothing,
        official: &QNLI_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Rte,
        resources: &[zip(
            "RTE.zip",
            "https://dl.fbaipublicfiles.com/glue/data/RTE.zip",
            "RTE",
        )],
        finish: Finish::Nothing,
        official: &RTE_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Wnli,
        resources: &[zip(
            "WNLI.zip",
            "https://dl.fbaipublicfiles.com/glue/data/WNLI.zip",
            "WNLI",
        )],
        finish: Finish::Nothing,
        official: &WNLI_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Ax,
        resources: &[file(
            "AX.tsv",
            "https://dl.fbaipublicfiles.com/glue/data/AX.tsv",
            "diagnostic.tsv",
        )],
        finish: Finish::Nothing,
        official: &[split("test", 1104)],
    },
    TaskSource {
        task: BuiltinTask::Snli,
        resources: &[zip(
            "snli_1.0.zip",
            "https://nlp.stanford.edu/projects/snli/snli_1.0.zip",
            "snli_1.0",
        )],
        finish: Finish::Nothing,
        official: &[
            OfficialSplit {
                split: "train",
                examples: 549367,
                unlabelled: 785,
            },
            OfficialSplit {
                split: "dev",
                examples: 9842,
                unlabelled: 158,
            },
            OfficialSplit {
                split: "test",
                examples: 9824,
                unlabelled: 176,
            },
        ],
    },
];

/// The source of a built-in task.
pub fn source(task: BuiltinTask) -> &'static TaskSource {
    SOURCES
        .iter()
        .find(|s| s.task == task)
        .expect("SOURCES has an entry for every BuiltinTask")
}
