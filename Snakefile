from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# `snakemake --report results/report.html`: this page, then the outputs flagged with
# report() (tables, plots, training curves, benchmark statistics) with their captions.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/plan.smk"
include: "workflow/rules/manipulate.smk"
include: "workflow/rules/questions.smk"
include: "workflow/rules/common_score.smk"
include: "workflow/rules/common_pretrain.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/common_train.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/common_rlcomm.smk"
include: "workflow/rules/rlcomm.smk"
include: "workflow/rules/common_evaluate.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/common_decode.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/aggregate.smk"


rule all:
    default_target: True
    input:
        benchmark_outputs(),
