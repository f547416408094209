"""Training on the tiny Omni thinker: batches, AV inputs, gradients, β, checkpoints,
the launcher's argument list and the config dataclasses."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from training_helpers import CPU_JOB, OMNI

from avtrust.errors import ConfigError
from avtrust.evaluate.prompt_template import training_parts
from avtrust.evaluate.prompts import prompt_for
from avtrust.models import registry
from avtrust.models.omni_inputs import VIDEO_SAMPLING_FILE, VisionSettings
from avtrust.train import checkpoint, curves
from avtrust.train.config import (
    PreferenceSettings,
    job_settings,
    method_settings,
    settings_from_dict,
)
from avtrust.train.data import (
    SequenceEncoder,
    cache_decoding,
    full_logits_logps,
    has_fused_head,
    pair_rows,
    sequence_logps,
)
from avtrust.train.fingerprint import model_fingerprint
from avtrust.train.job import make_spec, save
from avtrust.train.launch import Topology, accelerate_argv, first_host, topology, visible_gpus
from avtrust.train.methods import build_trainer

TRAINING = {
    "model": "omni",
    "methods": ["cavpref"],
    **CPU_JOB,
    "defaults": {
        "learning_rate": 2e-2,
        "max_steps": 2,
        "batch_size": 2,
        "save_steps": 1,
        "lora": {"enabled": True, "r": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]},
    },
    "sft": {},
    "dpo": {"beta": 0.1},
    "cavpref": {"lambda_text": 1.0, "lambda_video": 1.0, "lambda_audio": 0.8},
    "cavpref_no_robust": {"robust": False},
    "cavpref_no_av": {"av_terms": False},
    "cavpref_full": {"lora": {"enabled": False}},
}


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_models")
    return registry.prepare(registry.spec_from_config("omni", OMNI), root / "omni", seed=3)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, clips):
    """Pairs rows in the pairs-file schema: an A+V clip, V' and A' (MAT-like: A' is a
    silent clip), per-row β, η, γ."""
    c = {k: str(v.path) for k, v in clips.items()}
    common = {
        "question": "What is playing?",
        "options": ["a violin", "Mismatch in audio and video"],
    }
    rows = [
        {
            **common,
            "id": "p0",
            "task": "MVIT",
            "media_path": c["violin"],
            "chosen": "Mismatch in audio and video",
            "rejected": "a violin",
            "video_corrupted_path": c["cello"],
            "audio_corrupted_path": c["piano_wide"],
            **{"eta": 1.0, "gamma": 0.0, "beta_text": 0.3, "beta_video": 0.5, "beta_audio": 0.7},
        },
        {
            "question": "Is there sound?",
            "options": ["yes", "Audio is missing"],
            "id": "p1",
            "task": "MAT",
            "media_path": c["cello"],
            "chosen": "Audio is missing",
            "rejected": "yes",
            "video_corrupted_path": c["violin"],
            "audio_corrupted_path": c["video_only"],
            **{"eta": 0.0, "gamma": 1.0, "beta_text": 0.9, "beta_video": 0.2, "beta_audio": 0.4},
        },
    ]
    path = tmp_path_factory.mktemp("pairs") / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def spec_for(method, omni_dir, pairs, tmp_path, training=TRAINING, prompt=None):
    names = {
        "model": "model",
        "jsonl": "log.jsonl",
        "curve": "curve.png",
        "metrics": "metrics.json",
    }
    return make_spec(
        job=job_settings(training, method, seed=5, prompt=prompt),
        base_dir=omni_dir,
        inputs={"pairs": pairs},
        state_dir=tmp_path / "state",
        outputs={k: tmp_path / "out" / v for k, v in names.items()},
    )


def trainer_for(spec):
    trainer, _, _ = build_trainer(spec, settings_from_dict(spec["settings"]))
    return trainer


# -- batches ---------------------------------------------------------------------------


def test_one_batch_mixing_stream_kinds_equals_separate_forwards(omni_dir, clips):
    omni = registry.load(omni_dir)
    enc = SequenceEncoder(cache_decoding(omni.builder), omni.model.get_rope_index)
    paths = [clips["violin"].path, clips["audio_only"].path, clips["video_only"].path]
    prompts = ["What plays?", "Is it a flute?", "What is seen?"]
    responses = ["a violin", "yes", "Audio is missing"]
    e = enc(paths, prompts, responses)
    assert sorted(e.rows) == [0, 1, 2]
    with torch.no_grad():
        merged = sequence_logps(omni.model, e.batch)[e.rows]
        for i in range(3):
            alone = omni.sequence_logprobs(omni.inputs([paths[i]], [prompts[i]], [responses[i]]))
            assert merged[i].item() == pytest.approx(alone.item(), abs=1e-4)


def test_training_rows_are_worded_as_the_evaluation_asks(omni_dir, pairs, tmp_path):
    """SFT, DPO and CAVPref answer with an option's text: they train on the benchmark's
    log-likelihood evaluation prompt, the config's wording when it has one, and a
    changed wording is another training run."""
    default = pair_rows(pairs)
    assert default[0]["prompt"] == (
        "What is playing?\nOptions:\n- a violin\n- Mismatch in audio and video\n"
        "Answer with the text of one option."
    )
    for row, source in zip(default, pq.read_table(pairs).to_pylist(), strict=True):
        assert row["prompt"] == prompt_for(source["question"], source["options"], "loglik")
    own = training_parts(
        {"loglik": "Q: {question}\nPick one of:\n{options}", "choice": "x {question} {options}"}
    )
    assert set(own) == {"yes_no", "loglik", "loglik_option"}  # the generated wording is not read
    worded = pair_rows(pairs, template=own)
    assert (
        worded[0]["prompt"]
        == "Q: What is playing?\nPick one of:\n- a violin\n- Mismatch in audio and video"
    )
    trainer = trainer_for(spec_for("dpo", omni_dir, pairs, tmp_path, prompt=own))
    assert trainer.train_dataset[0]["prompt"] == worded[0]["prompt"]
    hashes = {
        spec_for("dpo", omni_dir, pairs, tmp_path, prompt=p)["config_hash"]
        for p in (None, training_parts(None), own)
    }
    assert len(hashes) == 2  # None is the default wording


def test_pairs_file_beta_reaches_the_batch_per_sample(omni_dir, pairs, tmp_path):
    trainer = trainer_for(spec_for("cavpref", omni_dir, pairs, tmp_path))
    batch = trainer.collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    assert batch["beta"].flatten().tolist() == pytest.approx([0.3, 0.5, 0.7, 0.9, 0.2, 0.4])
    assert batch["eta"].tolist() == [1.0, 0.0] and batch["gamma"].tolist() == [0.0, 1.0]
    assert batch["index"].shape == (2, 4) and batch["ref"].shape == (2, 4)
    # Calibrated β enters the loss sample by sample: changing one sample's β_text
    # changes the loss; a fixed-β trainer (DPO) ignores the column.
    model = trainer.model
    with torch.no_grad():
        base = trainer.compute_loss(model, batch).item()
        changed = {**batch, "beta": batch["beta"].clone()}
        changed["beta"][1, 0] = 0.1
        # At initialisation every Δ is 0 whatever β: move the policy first.
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
        base = trainer.compute_loss(model, batch).item()
        assert trainer.compute_loss(model, changed).item() != pytest.approx(base, abs=1e-7)
        trainer.fixed_beta = 0.1
        assert trainer.compute_loss(model, changed).item() == pytest.approx(
            trainer.compute_loss(model, batch).item(), abs=1e-7
        )


def test_audio_and_video_reach_the_model_in_the_loss(omni_dir, pairs, tmp_path):
    trainer = trainer_for(spec_for("cavpref", omni_dir, pairs, tmp_path))
    batch = trainer.collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    model = trainer.model
    for p in model.parameters():
        if p.requires_grad:
            p.data.add_(0.05 * torch.randn_like(p))
    with torch.no_grad():
        base = trainer.compute_loss(model, batch).item()
        for key in ("pixel_values_videos", "input_features"):
            changed = {**batch, "model": dict(batch["model"])}
            changed["model"][key] = batch["model"][key] + torch.randn_like(batch["model"][key])
            assert trainer.compute_loss(model, changed).item() != pytest.approx(base, abs=1e-6), key


@pytest.mark.parametrize("method", ["cavpref", "cavpref_full"])
def test_gradients_only_for_lora_parameters_when_lora_is_on(omni_dir, pairs, tmp_path, method):
    trainer = trainer_for(spec_for(method, omni_dir, pairs, tmp_path))
    batch = trainer.collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    model = trainer.model
    # A non-zero LoRA B (fresh adapters start at B = 0) so that A gets gradients too.
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.1)
    trainer.compute_loss(model, batch).backward()
    named = dict(model.named_parameters())
    lora = {n: p for n, p in named.items() if "lora_" in n}
    if method == "cavpref":
        assert lora and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora.values())
        assert all(p.grad is None for n, p in named.items() if "lora_" not in n)
    else:
        assert not lora
        lm = {n: p for n, p in named.items() if "language_model.layers" in n}
        assert lm and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lm.values())
        towers = [p for n, p in named.items() if "audio_tower.layers" in n or "visual.blocks" in n]
        assert towers and all(p.grad is not None for p in towers)


def test_samples_with_eta_or_gamma_0_skip_their_sequence_with_the_same_loss_and_gradient(
    omni_dir, pairs, tmp_path
):
    trainer = trainer_for(spec_for("cavpref", omni_dir, pairs, tmp_path))
    rows = [trainer.train_dataset[0], trainer.train_dataset[1]]  # η, γ = (1, 0) and (0, 1)
    model = trainer.model
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.1)

    def loss_and_grads(collator):
        batch = collator(rows)
        model.zero_grad()
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return batch, loss.item(), grads

    skipped, loss, grads = loss_and_grads(trainer.collator)
    trainer.collator.skip_unweighted = False
    full, full_loss, full_grads = loss_and_grads(trainer.collator)
    # 2 + 1 sequences per sample instead of 4; the skipped role reads y_w|V,A's row.
    assert skipped["model"]["input_ids"].shape[0] == 6 and full["model"]["input_ids"].shape[0] == 8
    assert skipped["index"][0, 3] == skipped["index"][0, 0]
    assert skipped["index"][1, 2] == skipped["index"][1, 0]
    assert len(set(full["index"].flatten().tolist())) == 8
    assert loss == pytest.approx(full_loss, abs=1e-6) and loss > 0
    assert grads.keys() == full_grads.keys() and grads
    for name, g in grads.items():
        torch.testing.assert_close(g, full_grads[name], rtol=1e-4, atol=1e-7, msg=name)


def test_fused_head_is_used_and_equals_the_full_logits_log_probs(omni_dir, pairs, tmp_path):
    trainer = trainer_for(spec_for("cavpref", omni_dir, pairs, tmp_path))
    assert has_fused_head(trainer.model)  # DPOTrainer added it under the PEFT wrapper
    assert not has_fused_head(registry.load(omni_dir).model)
    model = trainer.model
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.1)
    batch = trainer.collator([trainer.train_dataset[0], trainer.train_dataset[1]])["model"]
    head_calls = []
    hook = model.get_output_embeddings().register_forward_hook(lambda *_: head_calls.append(1))
    try:
        fused = sequence_logps(model, batch)
        assert not head_calls  # no (B, L, V) logits: the head's matmul runs in tiles
        full = full_logits_logps(model, batch)
        assert head_calls
    finally:
        hook.remove()
    torch.testing.assert_close(fused, full, rtol=1e-5, atol=1e-4)
    lora = [p for n, p in model.named_parameters() if "lora_A" in n]
    g_fused = torch.autograd.grad(fused.sum(), lora)
    g_full = torch.autograd.grad(full.sum(), lora)
    for a, b in zip(g_fused, g_full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_reference_log_probs_are_recomputed_when_pairs_or_weights_change_in_place(
    omni_dir, pairs, tmp_path
):
    model_dir = shutil.copytree(omni_dir, tmp_path / "omni")
    pairs_path = shutil.copy2(pairs, tmp_path / "pairs.parquet")
    spec = spec_for("cavpref", model_dir, pairs_path, tmp_path)
    first = trainer_for(spec)
    assert first.reference_passes == 1
    again = trainer_for(spec)
    assert again.reference_passes == 0  # same content: the cached references
    assert again.train_dataset["ref_chosen"] == first.train_dataset["ref_chosen"]
    # The same pairs path, sample p0 with another y_w: recomputed, p0's y_w reference moves.
    table = pq.read_table(pairs_path).to_pylist()
    table[0]["chosen"] = "a cello"
    pq.write_table(pa.Table.from_pylist(table), pairs_path)
    rewritten = trainer_for(spec)
    assert rewritten.reference_passes == 1
    assert rewritten.train_dataset["chosen"][0] == "a cello"
    assert rewritten.train_dataset["ref_chosen"][0] != pytest.approx(
        first.train_dataset["ref_chosen"][0], abs=1e-6
    )
    # The same model path, other weights: recomputed again.
    registry.prepare(registry.spec_from_config("omni", OMNI), model_dir, seed=4)
    reweighted = trainer_for(spec)
    assert reweighted.reference_passes == 1
    assert reweighted.train_dataset["ref_chosen"][1] != pytest.approx(
        rewritten.train_dataset["ref_chosen"][1], abs=1e-6
    )


def test_reference_log_probs_precompute_in_bf16_on_the_cpu(omni_dir, pairs, tmp_path):
    """precision bf16 on the CPU (the launcher allows it): the collator's Whisper features
    are computed outside the autocast region (inside it their filter-bank product came
    out in bf16 and its numpy conversion failed), and the bf16 references are the fp32
    ones to bf16's precision."""
    bf16 = {**TRAINING, "precision": "bf16"}
    low = trainer_for(spec_for("cavpref", omni_dir, pairs, tmp_path / "bf16", training=bf16))
    full = trainer_for(spec_for("cavpref", omni_dir, pairs, tmp_path / "fp32"))
    assert low.args.bf16 and not full.args.bf16
    roles = [c for c in full.train_dataset.column_names if c.startswith("ref_")]
    assert len(roles) == 4
    for column in roles:
        assert low.train_dataset[column] == pytest.approx(full.train_dataset[column], rel=0.05)


def move_policy(model, scale: float = 0.05) -> None:
    """Fresh adapters start at B = 0 (policy = reference): give every trainable weight
    a seeded nudge so the Δs and the losses depend on the sequences."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=generator))


def test_video_and_audio_corrupted_sequences_keep_their_roles(omni_dir, pairs, tmp_path):
    """L_V is computed from y_w|V',A and L_A from y_w|V,A': changing only the V' clips
    moves loss_video and leaves loss_audio; swapping the V' and A' clips changes the loss."""
    trainer = trainer_for(spec_for("cavpref", omni_dir, pairs, tmp_path))
    move_policy(trainer.model)
    rows = [{**trainer.train_dataset[i], "eta": 1.0, "gamma": 1.0} for i in range(2)]

    def loss_and_terms(rows):
        with torch.no_grad():
            loss = trainer.compute_loss(trainer.model, trainer.collator(rows)).item()
        logged = trainer._metrics["train"]
        return loss, logged["loss_video"][-1], logged["loss_audio"][-1]

    trainer.model.train()
    base, video, audio = loss_and_terms(rows)
    other_video = [{**r, "video_corrupted_path": r["audio_corrupted_path"]} for r in rows]
    _, video2, audio2 = loss_and_terms(other_video)
    assert video2 != pytest.approx(video, abs=1e-6) and audio2 == pytest.approx(audio, abs=1e-7)
    swapped = [
        {**r, "video_corrupted_path": r["audio_corrupted_path"],
         "audio_corrupted_path": r["video_corrupted_path"]}
        for r in rows
    ]  # fmt: skip
    loss3, video3, audio3 = loss_and_terms(swapped)
    assert loss3 != pytest.approx(base, abs=1e-6)
    assert (video3, audio3) != pytest.approx((video, audio), abs=1e-6)


def test_reference_pass_runs_the_base_model_with_the_adapter_off(omni_dir, pairs, tmp_path):
    """With a non-zero LoRA B the policy differs from the base model; the reference
    log-probs are the base model's all the same."""
    trainer = trainer_for(spec_for("cavpref", omni_dir, pairs, tmp_path))
    for name, p in trainer.model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)
    columns = [c for c in trainer.train_dataset.column_names if not c.startswith("ref_")]
    dataset = trainer.train_dataset.select_columns(columns)
    reference = trainer.reference_logps(dataset, batch_size=2)
    batch = trainer.collator([dataset[0], dataset[1]])
    base = registry.load(omni_dir).model.eval()
    with torch.no_grad():
        want = sequence_logps(base, batch["model"])[batch["index"]]
        policy = sequence_logps(trainer.model.eval(), batch["model"])[batch["index"]]
    torch.testing.assert_close(reference, want.float(), rtol=1e-4, atol=1e-4)
    assert (policy - want).abs().max().item() > 1e-3


# -- training, reference pass, checkpoint ---------------------------------------------


def test_train_writes_outputs_and_load_policy_applies_the_adapter(omni_dir, pairs, tmp_path, clips):
    spec = spec_for("cavpref", omni_dir, pairs, tmp_path)
    trainer = trainer_for(spec)
    assert trainer.reference_passes == 1
    trainer.train()
    assert trainer.reference_passes == 1  # precomputed once, not per step
    metrics = save(trainer, spec, settings_from_dict(spec["settings"]), 2, {})
    assert metrics["steps"] == 2 and metrics["final_loss"] is not None
    assert metrics["start"] == {"path": str(omni_dir), "sha256": model_fingerprint(omni_dir)}
    out = spec["outputs"]
    meta = checkpoint.read_meta(out["model"])
    assert meta["adapter"] is True and meta["base_model"] == "omni" and meta["steps"] == 2
    assert (tmp_path / "out" / "model" / "adapter_config.json").is_file()
    lines = (tmp_path / "out" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"step": 1' in lines[0]
    assert (tmp_path / "out" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    # The cached reference log-probs serve a rebuilt trainer: no second pass.
    again = trainer_for(spec)
    assert again.reference_passes == 0
    # load_policy gives the trained policy: same log-probs as the trainer's model.
    policy = checkpoint.load_policy(out["model"])
    assert type(policy).__name__ == "OmniThinker"
    batch = policy.inputs([clips["violin"].path], ["What is playing?"], ["a violin"])
    base = registry.load(omni_dir)
    trained = trainer.model.eval()
    with torch.no_grad():
        got = policy.sequence_logprobs(batch).item()
        want = sequence_logps(trained, batch).item()
        assert got == pytest.approx(want, abs=1e-4)
        assert got != pytest.approx(base.sequence_logprobs(batch).item(), abs=1e-4)


def test_full_weights_checkpoint_samples_videos_as_its_base_model(omni_dir, pairs, tmp_path):
    """Full fine-tuning writes the model's own folder: its video pixel budget and frame
    rate must be the base model's (else evaluation feeds it frames of another size than
    it was trained on, and misses the decode-once cache)."""
    assert (omni_dir / VIDEO_SAMPLING_FILE).is_file()  # the tiny model has its own budget
    spec = spec_for("cavpref_full", omni_dir, pairs, tmp_path)
    trainer = trainer_for(spec)
    trainer.train()
    save(trainer, spec, settings_from_dict(spec["settings"]), 2, {})
    model_dir = Path(spec["outputs"]["model"])
    assert checkpoint.read_meta(model_dir)["adapter"] is False
    assert VisionSettings.from_dir(model_dir) == VisionSettings.from_dir(omni_dir)
    assert VisionSettings.from_dir(model_dir) != VisionSettings()
    policy = checkpoint.load_policy(model_dir)
    assert policy.builder.vision == VisionSettings.from_dir(omni_dir)


def test_resume_state_is_discarded_under_another_config(tmp_path):
    state = tmp_path / "state"
    assert checkpoint.prepare_state(state, "aaa") is None
    (state / "checkpoint-3").mkdir()
    (state / "checkpoint-3" / "trainer_state.json").write_text("{}")
    (state / "checkpoint-5").mkdir()  # incomplete: no trainer_state.json
    (state / "checkpoint-7").mkdir()  # killed while its trainer_state.json was written
    (state / "checkpoint-7" / "trainer_state.json").write_text('{"global_step": 7, "log_hi')
    assert checkpoint.prepare_state(state, "aaa") == str(state / "checkpoint-3")
    assert checkpoint.prepare_state(state, "bbb") is None
    assert not (state / "checkpoint-3").exists()
    checkpoint.finish_state(state, keep=False)
    assert not state.exists()


def test_load_policy_names_a_missing_checkpoint(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="avtrust_checkpoint.json"):
        checkpoint.load_policy(tmp_path)


# -- config and launcher --------------------------------------------------------------


def test_method_settings_merge_defaults_family_and_method():
    s = method_settings(TRAINING, "cavpref_no_robust", seed=9)
    assert isinstance(s, PreferenceSettings)
    assert (s.family, s.robust, s.av_terms, s.beta, s.lambda_audio) == (
        "cavpref",
        False,
        True,
        "calibrated",
        0.8,
    )
    assert s.seed == 9 and s.lora.targets == ("q_proj", "v_proj") and s.max_steps == 2
    dpo = method_settings(TRAINING, "dpo", seed=9)
    assert (dpo.beta, dpo.av_terms, dpo.robust) == (0.1, False, False)
    assert method_settings(TRAINING, "cavpref_no_av", 1).av_terms is False
    with pytest.raises(ConfigError, match="unknown key"):
        method_settings({**TRAINING, "sft": {"beta": 0.1}}, "sft", 1)
    with pytest.raises(ConfigError, match="no method 'grpo'"):
        method_settings(TRAINING, "grpo", 1)


def test_accelerate_argv_and_topology():
    env = {"SLURM_GPUS_ON_NODE": "4", "SLURM_NNODES": "2", "SLURM_NODEID": "1",
           "SLURM_JOB_NODELIST": "gpu[03-04]"}  # fmt: skip
    topo = topology(0, env)
    assert topo == Topology(processes=4, machines=2, machine_rank=1, main_address="gpu03")
    argv = accelerate_argv(
        ["--spec", "s.json"], topo, precision="bf16", config_file="config/accelerate/zero2.yaml"
    )
    assert argv[1:3] == ["-m", "accelerate.commands.launch"]
    assert argv[argv.index("--num_processes") + 1] == "8"
    assert argv[argv.index("--machine_rank") + 1] == "1"
    assert argv[argv.index("--mixed_precision") + 1] == "bf16"
    assert argv[argv.index("--config_file") + 1] == "config/accelerate/zero2.yaml"
    assert argv[-4:] == ["-m", "avtrust.train.job", "--spec", "s.json"]
    assert all(isinstance(a, str) for a in argv)
    cpu = accelerate_argv([], topology(2, {}), cpu=True)
    assert "--multi_gpu" in cpu and "--cpu" not in cpu  # gloo via ACCELERATE_USE_CPU
    assert topology(0, {"CUDA_VISIBLE_DEVICES": "0,1"}).processes == 2
    assert topology(0, {}).processes == 1 and visible_gpus({"SLURM_GPUS_ON_NODE": "a800:2"}) == 2
    assert first_host("node7") == "node7" and first_host("a[1,3],b") == "a1"
    with pytest.raises(ConfigError, match="precision"):
        accelerate_argv([], topo, precision="fp8")


def test_processes_of_one_machine_meet_on_a_free_port_or_the_users():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    with busy:
        ports = {topology(2, {}).main_port for _ in range(5)}
        assert busy.getsockname()[1] not in ports
        for port in ports:  # free: it can be bound
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))
    assert topology(2, {"MASTER_PORT": "31234"}).main_port == 31234
    argv = accelerate_argv([], topology(2, {"MASTER_PORT": "31234"}), cpu=True)
    assert argv[argv.index("--main_process_port") + 1] == "31234"


def test_a_multi_node_job_starts_one_launcher_per_node(monkeypatch):
    from avtrust.train import launch

    started = []
    monkeypatch.setattr(launch, "launch", lambda argv, env, log=None: started.append(argv))
    monkeypatch.setenv("SLURM_NNODES", "2")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu07")
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "4")
    launch.start(lambda: pytest.fail("ran in place"), ["--spec", "s.json"], 0, precision="bf16")
    (argv,) = started
    assert argv[:3] == ["srun", "--overlap", "--nodes=2"]
    assert argv[argv.index("--precision") + 1] == "bf16"
    assert argv[argv.index("--") :] == ["--", "--spec", "s.json"]


# -- Trainer arguments shared by every training job --------------------------------------


def test_trainer_arguments_carry_the_settings_of_every_job_kind(tmp_path):
    from transformers import TrainingArguments
    from trl import DPOConfig, GRPOConfig

    from avtrust.train.arguments import job_arguments
    from avtrust.train.rlcomm import stage_settings

    defaults = {"learning_rate": 3e-4, "grad_accum": 4, "weight_decay": 0.01, "save_steps": 7}
    sft = method_settings({"defaults": defaults, "sft": {}}, "sft", 11)
    place = {"state_dir": str(tmp_path / "state"), "device": "cpu", "precision": "no"}
    args = job_arguments(sft, place)
    assert type(args) is TrainingArguments
    assert (args.learning_rate, args.gradient_accumulation_steps, args.weight_decay) == (
        3e-4,
        4,
        0.01,
    )
    assert (args.save_steps, args.seed, args.data_seed) == (7, 11, 11)
    assert args.output_dir == place["state_dir"] and args.use_cpu and not args.bf16
    assert args.ddp_find_unused_parameters is False
    dpo = job_arguments(method_settings({"dpo": {"beta": 0.3}}, "dpo", 11), place)
    assert type(dpo) is DPOConfig and dpo.beta == 0.3 and dpo.precompute_ref_log_probs

    # RL-CoMM stages: typed settings from their section, constant lr unless set
    stage = {
        "learning_rate": 1e-3,
        "max_steps": 3,
        "batch_size": 4,
        "save_steps": 1,
        "group_size": 2,
        "max_completion_length": 8,
        "temperature": 1.0,
        "seeded_generation": False,
    }
    rlcomm = {**RLCOMM_JOB, "grpo_acc": stage, "warmup": {"learning_rate": 1e-3}}
    grpo_settings = settings_from_dict(stage_settings(rlcomm, "grpo_acc", 5)["settings"])
    assert grpo_settings.rewards == ("format", "accuracy")
    grpo = job_arguments(grpo_settings, {**place, "precision": "bf16"})
    assert type(grpo) is GRPOConfig
    assert (grpo.num_generations, grpo.max_steps, grpo.seed, grpo.beta) == (2, 3, 5, 0.0)
    assert grpo.lr_scheduler_type == "constant" and grpo.bf16
    rlcomm["warmup"] = {**rlcomm["warmup"], "lr_scheduler": "cosine", "max_grad_norm": 0.5}
    warm = job_arguments(
        settings_from_dict(stage_settings(rlcomm, "rlcomm_warmup", 5)["settings"]), place
    )
    assert type(warm) is TrainingArguments
    assert (warm.lr_scheduler_type, warm.max_grad_norm) == ("cosine", 0.5)
    # a key the stage does not know is an error naming the section
    rlcomm["warmup"]["group_size"] = 2
    with pytest.raises(ConfigError, match=r"rlcomm\.warmup: unknown key\(s\) \['group_size'\]"):
        stage_settings(rlcomm, "rlcomm_warmup", 5)


RLCOMM_JOB = {
    "policy": "omni",
    **CPU_JOB,
    "processes": 2,
    "lora": {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj"]},
}


def test_zero_stage_of_the_shipped_accelerate_configs(tmp_path, monkeypatch):
    from avtrust.train.launch import zero_stage

    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # accelerate's relative paths
    assert zero_stage("config/accelerate/zero2.yaml") == 2
    assert zero_stage("config/accelerate/zero3.yaml") == 3
    inline = tmp_path / "inline.yaml"
    inline.write_text("distributed_type: DEEPSPEED\ndeepspeed_config: {zero_stage: 3}\n")
    assert zero_stage(inline) == 3
    plain = tmp_path / "ddp.yaml"
    plain.write_text("distributed_type: MULTI_GPU\n")
    assert zero_stage(plain) is None
    with pytest.raises(ConfigError, match="missing.yaml"):
        zero_stage(tmp_path / "missing.yaml")


def test_every_job_launches_the_one_runner_with_its_accelerate_config(
    omni_dir, tmp_path, monkeypatch
):
    """RL-CoMM stages go through the same runner as the other methods, ZeRO-3 included:
    the trainer's save_model gathers the shards, rank 0 merges the adapter on the CPU."""
    from avtrust.train import job, launch
    from avtrust.train.rlcomm import stage_settings

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    seen = {}

    def start(*args, **kw):  # what the launcher is given, and the spec it would read
        seen.update(kw, args=args, spec=json.loads(Path(args[1][0]).read_text()))

    monkeypatch.setattr(launch, "start", start)
    data = tmp_path / "warmup.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "Q?", "response": "A."}]), data)
    for config_file in ("config/accelerate/zero2.yaml", "config/accelerate/zero3.yaml"):
        rlcomm = {**RLCOMM_JOB, "accelerate_config": config_file, "warmup": {}}
        spec = make_spec(
            job=stage_settings(rlcomm, "rlcomm_warmup", 5),
            base_dir=omni_dir,
            inputs={"data": data},
            outputs={"model": tmp_path / "out" / "model"},
            state_dir=tmp_path / "state",
            threads=3,
        )
        job.train_job(spec)
        assert seen["config_file"] == config_file and seen["module"] == "avtrust.train.job"
        assert seen["args"][2] == 2 and seen["threads"] == 3 and seen["precision"] == "no"
        written = seen["spec"]
        assert written["resume"] is None and written["config_hash"] == spec["config_hash"]
        assert written["start"] == {
            "path": str(omni_dir),
            "sha256": model_fingerprint(omni_dir),
        }


# -- experiment tracking ------------------------------------------------------------------


def tracked_run(omni_dir, pairs, tmp_path, monkeypatch, report_to):
    """A 2-step DPO job reporting to ``report_to``, run by the job runner in a workflow
    folder (``tmp_path``); returns the spec and the job's tracking folder."""
    from avtrust.train.job import train_job

    monkeypatch.chdir(tmp_path)  # the workflow's working directory: results/ is here
    for name in ("TENSORBOARD_LOGGING_DIR", "WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    tracking = {"report_to": report_to, "run_name": "tiny-{method}"}
    spec = spec_for("dpo", omni_dir, pairs, tmp_path, {**TRAINING, "tracking": tracking})
    folder = tmp_path / "results" / "tracking" / "dpo"
    stale = folder / "events.out.tfevents.0.earlier-run"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier run's events")
    train_job(spec)
    assert not stale.exists()  # a fresh run starts from an empty folder
    # Nothing of the trackers outside results/ (TensorBoard's default is <output_dir>/runs,
    # Weights & Biases' ./wandb).
    strays = [
        p
        for p in tmp_path.rglob("*")
        if p.name in ("runs", "wandb") and not p.is_relative_to(tmp_path / "results")
    ]
    assert strays == []
    return spec, folder


def test_tensorboard_events_hold_the_losses_of_log_jsonl(omni_dir, pairs, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason="tensorboard is a pinned dependency")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spec, folder = tracked_run(omni_dir, pairs, tmp_path, monkeypatch, "tensorboard")
    assert spec["tracking"] == {
        "report_to": ["tensorboard"],
        "run_name": "tiny-dpo",
        "logging_dir": "results/tracking/dpo",
    }
    events = sorted(folder.glob("events.out.tfevents.*"))
    assert len(events) == 1
    board = EventAccumulator(str(folder))
    board.Reload()
    logged = curves.read_log(spec["outputs"]["jsonl"])  # the project's own log stays
    assert [r["step"] for r in logged] == [1, 2]
    scalars = board.Scalars("train/loss")
    assert [e.step for e in scalars] == [1, 2]
    assert [e.value for e in scalars] == pytest.approx([r["loss"] for r in logged], rel=1e-5)
    assert "train/learning_rate" in board.Tags()["scalars"]
    assert Path(spec["outputs"]["curve"]).is_file()


def test_wandb_offline_run_is_written_under_results(omni_dir, pairs, tmp_path, monkeypatch):
    pytest.importorskip(
        "wandb",
        reason="wandb is pinned by the dev extra only (pip install -e '.[dev]', as "
        "scripts/setup.sh does): pip install wandb to run this check",
    )
    monkeypatch.setenv("WANDB_MODE", "offline")  # no network, no account
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    spec, folder = tracked_run(omni_dir, pairs, tmp_path, monkeypatch, ["wandb"])
    runs = sorted((folder / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    records = list(runs[0].glob("run-*.wandb"))
    assert len(records) == 1
    # The run record (protobuf, strings stored as they are; wandb ships no public reader
    # for it) holds the run's name, project and the logged losses: `wandb sync` uploads it.
    record = records[0].read_bytes()
    assert b"tiny-dpo" in record and b"avtrust" in record and b"train/loss" in record
    assert "finishing run avtrust/" in (folder / "wandb" / "debug.log").read_text()


def test_tracking_settings_are_checked_and_resolved_per_method():
    from avtrust.train.rlcomm import stage_settings
    from avtrust.train.tracking import job_tracking

    got = job_tracking({"report_to": ["wandb", "tensorboard"]}, "training.tracking", "sft")
    assert got == {
        "report_to": ["wandb", "tensorboard"],
        "run_name": "sft",
        "logging_dir": "results/tracking/sft",
    }
    assert job_tracking({}, "rlcomm.tracking", "grpo_acc")["report_to"] == []
    rlcomm = {**RLCOMM_JOB, "tracking": {"report_to": "tensorboard", "run_name": "x-{method}"}}
    rlcomm["warmup"] = {"learning_rate": 1e-3}
    job = stage_settings(rlcomm, "rlcomm_warmup", 5)
    assert job["tracking"]["run_name"] == "x-rlcomm_warmup"
    assert job["tracking"]["logging_dir"] == "results/tracking/rlcomm_warmup"
    for bad, message in [
        ({"report_to": "mlflow"}, r"report_to: 'mlflow' is not 'none'"),
        ({"logging_dir": "/tmp/tb"}, r"logging_dir must be a folder under results/"),
        ({"logging_dir": "results/../tb"}, r"logging_dir must be a folder under results/"),
        ({"run_name": "{model}"}, r"run_name: '\{model\}' may only use \{method\}"),
        ({"project": "x"}, r"unknown key\(s\) \['project'\]"),
    ]:
        with pytest.raises(ConfigError, match=r"training\.tracking.*" + message):
            job_tracking(bad, "training.tracking", "sft")


def test_trainer_arguments_report_to_the_configured_trackers(tmp_path):
    from avtrust.train.arguments import job_arguments

    place = {"state_dir": str(tmp_path / "state"), "device": "cpu", "precision": "no"}
    settings = method_settings({"dpo": {}}, "dpo", 1)
    assert job_arguments(settings, place).report_to == []
    tracking = {"report_to": ["tensorboard"], "run_name": "r-dpo", "logging_dir": "results/t"}
    args = job_arguments(settings, {**place, "tracking": tracking})
    assert (args.report_to, args.run_name) == (["tensorboard"], "r-dpo")
