# Test-only fault injection for the Slurm tests: the real workflow, unchanged, plus two
# rules that fail on purpose. Run as `snakemake -s tests/slurm/faults.smk ...`; nothing
# in the workflow itself knows about it.
#
#   flaky_once    fails on its first attempt (it leaves a marker file), succeeds when
#                 retried: the run must complete.
#   always_fails  fails on every attempt: only its branch (after_always) must stop,
#                 and the failure must be reported with its log paths.


include: "../../Snakefile"


rule flaky_once:
    output:
        done="results/faults/flaky_once.txt",
    log:
        "logs/faults/flaky_once.log",
    params:
        marker="results/faults/flaky_once.attempted",
    shell:
        "if [ -e {params.marker} ]; then echo recovered > {output.done}; echo retry ok > {log};"
        " else touch {params.marker}; echo 'injected failure (first attempt)' > {log}; exit 1; fi"


rule always_fails:
    output:
        done="results/faults/always.txt",
    log:
        "logs/faults/always_fails.log",
    shell:
        "echo 'injected failure (every attempt)' > {log}; exit 3"


rule after_flaky:
    input:
        rules.flaky_once.output.done,
    output:
        "results/faults/after_flaky.txt",
    log:
        "logs/faults/after_flaky.log",
    shell:
        "cp {input} {output} 2> {log}"


rule after_always:
    input:
        rules.always_fails.output.done,
    output:
        "results/faults/after_always.txt",
    log:
        "logs/faults/after_always.log",
    shell:
        "cp {input} {output} 2> {log}"
