from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/plan.smk"
include: "workflow/rules/manipulate.smk"
include: "workflow/rules/questions.smk"
include: "workflow/rules/common_score.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/score.smk"


rule all:
    default_target: True
    input:
        benchmark_outputs(),
