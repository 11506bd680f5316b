"""``st-plugins train-reranker [--task sts|qa]``: fine-tune all-MiniLM-L6-v2 into a cross-encoder (reranker).

``--task sts`` (the default) makes the STS similarity reranker ``st-plugins/stsb-reranker`` from the
STS benchmark; ``--task qa`` makes the question-answer reranker ``st-plugins/qa-reranker`` from
WikiQA, the one to put behind a retriever.
"""

from __future__ import annotations

import argparse
import sys

from st_plugins.commands import _training
from st_plugins.training import qa, recipes  # light: the heavy imports happen inside their functions
from st_plugins.training.named import QA_RERANKER, STSB_RERANKER, named_dir

NAME = "train-reranker"
HELP = ("Fine-tune the packaged all-MiniLM-L6-v2 into a cross-encoder and save it: --task sts (default) on the "
        "STS benchmark (similarity scores), --task qa on WikiQA (question-answer reranking for retrieval).")

QUICK_MIN_SPEARMAN = 0.75  # --quick (1 epoch on 1,500 pairs, base model as teacher) must reach this STS test Spearman
QUICK_MIN_MAP = 0.68  # --task qa --quick (1 epoch on 600 questions: 0.703 measured) must reach this WikiQA test MAP
#: Per task: the model's name, its default learning rate and epochs.
TASKS = {"sts": (STSB_RERANKER, 1e-4, recipes.EPOCHS), "qa": (QA_RERANKER, qa.LEARNING_RATE, qa.EPOCHS)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _training.add_arguments(
        parser, out="output folder (default: $ST_PLUGINS_HOME/stsb-reranker for --task sts, .../qa-reranker for "
                    "--task qa; else the same under the user cache dir, e.g. ~/.cache/st_plugins/; there it loads as "
                    f"{STSB_RERANKER!r} or {QA_RERANKER!r})",
        base_model="model whose transformer is fine-tuned, with a fresh 1-label head (default: all-MiniLM-L6-v2)",
        epochs=f"{recipes.EPOCHS} for sts, {qa.EPOCHS} for qa", lr=f"1e-4 for sts, {qa.LEARNING_RATE:g} for qa", seed=12,
        data="sts: STS benchmark folder with sts-train.csv, sts-dev.csv[, sts-test.csv] (default: "
             "$ST_PLUGINS_DATA/stsbenchmark); qa: WikiQA folder with WikiQA-train.tsv, WikiQA-dev.tsv[, WikiQA-test.tsv] "
             "(default: $ST_PLUGINS_DATA/wikiqa)",
        quick=f"short run for CI; sts: 1 epoch on 1,500 pairs, the base model as teacher, no silver pairs, fails unless "
              f"STS test Spearman >= {QUICK_MIN_SPEARMAN}; qa: 1 epoch on {qa.QUICK_QUESTIONS} questions, fails unless "
              f"WikiQA test MAP >= {QUICK_MIN_MAP}")
    parser.add_argument("--task", choices=sorted(TASKS), default="sts",
                        help="sts: how alike two sentences are (STS benchmark); qa: does a passage answer a question "
                             "(WikiQA, research use only) (default: sts)")
    parser.add_argument("--max-length", type=int, default=128, help="token limit per pair (default: 128)")
    parser.add_argument("--teacher-weight", type=float, default=None,
                        help="share of the bi-encoder teacher's score in each label; 0 trains on the gold labels alone "
                             f"(default: {recipes.TEACHER_WEIGHT} for sts, {qa.TEACHER_WEIGHT} for qa with --listwise 0)")
    sts = parser.add_argument_group("--task sts only")
    sts.add_argument("--teacher", default=recipes.TEACHER, metavar="cosent|NAME_OR_PATH",
                     help="bi-encoder whose scores are distilled into the labels: 'cosent' fine-tunes the base model "
                          "with CoSENT on the training pairs first (default), or give a bi-encoder")
    sts.add_argument("--teacher-epochs", type=int, default=recipes.TEACHER_EPOCHS,
                     help=f"CoSENT epochs of the 'cosent' teacher (default: {recipes.TEACHER_EPOCHS})")
    sts.add_argument("--teacher-lr", type=float, default=recipes.TEACHER_LR,
                     help=f"peak learning rate of the 'cosent' teacher (default: {recipes.TEACHER_LR:g})")
    sts.add_argument("--silver", type=int, default=recipes.SILVER,
                     help=f"extra pairs of training sentences labelled by the teacher (default: {recipes.SILVER})")
    qa_group = parser.add_argument_group("--task qa only")
    qa_group.add_argument("--listwise", type=int, default=qa.LISTWISE, metavar="K",
                          help="negatives each answer competes with under a softmax loss (wrong sentences of its page and "
                               f"other pages' nearest); 0 trains pointwise with BCE (default: {qa.LISTWISE})")
    qa_group.add_argument("--other-pages", type=int, default=qa.OTHER_PAGES, metavar="N",
                          help="of the listwise negatives, how many are other pages' sentences nearest the question "
                               f"(the rest come from its own page) (default: {qa.OTHER_PAGES})")
    qa_group.add_argument("--hard-negatives", type=int, default=qa.HARD_NEGATIVES,
                          help="pointwise: per question, the sentences of other pages nearest to it (bi-encoder) added "
                               f"as negatives (default: {qa.HARD_NEGATIVES})")


def run(args: argparse.Namespace) -> int:
    name, lr, epochs = TASKS[args.task]
    settings = _training.common_settings(args)
    settings["learning_rate"] = lr if args.lr is None else args.lr
    settings["epochs"] = epochs if args.epochs is None else args.epochs
    if args.task == "qa":
        weight = qa.TEACHER_WEIGHT if args.teacher_weight is None else args.teacher_weight
        result = qa.train_qa_reranker(args.data, args.out, **settings, max_length=args.max_length,
                                      hard_negatives=args.hard_negatives, teacher_weight=weight, listwise=args.listwise,
                                      other_pages=args.other_pages)
        print(_training.qa_report(result))
        failed = args.quick and result.test and result.test["map"] < QUICK_MIN_MAP
        shortfall = f"WikiQA test MAP {result.test['map']:.4f} < {QUICK_MIN_MAP}" if failed else ""
    else:
        weight = recipes.TEACHER_WEIGHT if args.teacher_weight is None else args.teacher_weight
        result = recipes.train_stsb_reranker(
            args.data, args.out, **settings, max_length=args.max_length, teacher=args.teacher,
            teacher_epochs=args.teacher_epochs, teacher_learning_rate=args.teacher_lr, teacher_weight=weight,
            silver=args.silver,
        )
        print(_training.report(result))
        failed = args.quick and result.test_spearman is not None and result.test_spearman < QUICK_MIN_SPEARMAN
        shortfall = f"STS test Spearman {result.test_spearman:.4f} < {QUICK_MIN_SPEARMAN}" if failed else ""
    print(f"Saved the reranker to {result.path}")
    alias = f" or CrossEncoder({name!r})" if result.path.resolve() == named_dir(name).resolve() else ""
    print(f"Load it with CrossEncoder({str(result.path)!r}){alias}")
    if failed:
        print(f"st-plugins {NAME}: quick run reached {shortfall}", file=sys.stderr)
        return 1
    return 0
