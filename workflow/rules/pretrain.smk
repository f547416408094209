# Pretrain stage (pretrain.enabled): the tiny models whose adapter has a pre-training
# (avtrust.pretrain.PRETRAINED: the Omni thinker, the audio LLM, CLAP, Qwen3-Embedding;
# pretrain.models narrows them) are built untrained into resources/pretrain/untrained/,
# trained on a synthetic corpus of their own (resources/pretrain/corpus/, drawn from the
# pre-training seed) and written to resources/models/<name>/, where every later stage
# loads them. The models stage builds the others. A thinker with
# pretrain.thinker.start_from is trained after the model it starts from, and with
# pretrain.vision_tower after its vision tower (resources/pretrain/vision_tower/<name>),
# which pretrain_vision_tower trains alone on the corpus's silent clips. Both thinker
# jobs read the corpus decoded once (decode_pretrain_clips), as the thinker reads it.
# The corpus and decode jobs run pretrain.media_workers ffmpeg processes at once but ask
# for one core: a job asking for two starts only when both are free at the same moment,
# which beside a stream of single-core jobs took minutes (2-core runs: the corpus started
# 1.3 minutes late, the decoding 4.4).


rule pretrain_corpus:
    output:
        corpus=directory("resources/pretrain/corpus"),
    log:
        "logs/pretrain/corpus.log",
    priority: CHAIN_PRIORITY
    conda:
        "../../envs/media.yaml"
    params:
        config=corpus_job_config(config),
    script:
        "../scripts/pretrain_corpus.py"


rule prepare_untrained_model:
    output:
        model=directory("resources/pretrain/untrained/{model}"),
    log:
        "logs/pretrain/untrained/{model}.log",
    wildcard_constraints:
        model=one_of(PRETRAINED_MODELS),
    priority: CHAIN_PRIORITY
    conda:
        "../../envs/models.yaml"
    resources:
        mem_mb=8000,
    params:
        entry=lambda wc: config["models"][wc.model],
        seed=config["seed"],
    script:
        "../scripts/prepare_model.py"


rule decode_pretrain_clips:
    input:
        untrained="resources/pretrain/untrained/{model}",
        corpus="resources/pretrain/corpus",
    output:
        index=DECODED_CORPUS,
    log:
        "logs/pretrain/decoded/{model}.log",
    wildcard_constraints:
        model=one_of(m for m in PRETRAINED_MODELS if is_thinker(config, m)),
    priority: CHAIN_PRIORITY
    conda:
        "../../envs/models.yaml"
    resources:
        mem_mb=8000,
    script:
        "../scripts/decode_pretrain_clips.py"


rule pretrain_vision_tower:
    input:
        untrained="resources/pretrain/untrained/{model}",
        corpus="resources/pretrain/corpus",
        decoded=DECODED_CORPUS,
    output:
        tower=directory("resources/pretrain/vision_tower/{model}"),
        summary="results/pretrain/{model}_vision_tower.json",
    log:
        "logs/pretrain/{model}_vision_tower.log",
    wildcard_constraints:
        model=one_of(PRETRAINED_MODELS),
    priority: VISION_PRIORITY
    conda:
        "../../envs/models.yaml"
    threads: PRETRAIN.get("threads", 1)
    resources:
        mem_mb=8000,
    params:
        config=vision_job_config(config),
    script:
        "../scripts/pretrain_vision_tower.py"


rule pretrain_model:
    input:
        unpack(pretrain_start),
        untrained="resources/pretrain/untrained/{model}",
        corpus="resources/pretrain/corpus",
    output:
        model=directory("resources/models/{model}"),
        summary="results/pretrain/{model}.json",
    log:
        "logs/pretrain/{model}.log",
    wildcard_constraints:
        model=one_of(PRETRAINED_MODELS),
    priority: pretrain_priority
    conda:
        "../../envs/models.yaml"
    threads: PRETRAIN.get("threads", 1)
    resources:
        mem_mb=8000,
    params:
        config=lambda wc: model_job_config(config, wc.model),
    script:
        "../scripts/pretrain_model.py"
