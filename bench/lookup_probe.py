"""Can a tiny Qwen2 language model learn "is X among the listed things?" at all?

The pre-trained thinker's yes/no failure (bench/README.md, ``pretrain_probe.py``) needs a
two-step lookup: bring the asked instrument to the answer position, then find it among
the clip's tokens. This probe strips the clip away: a plain ``Qwen2ForCausalLM`` of the
tiny thinker's text shape reads token sequences

    [filler * prefix] <list> i1 i2 i3 </list> <ask> X <suffix * 4> -> yes | no

(1-3 of 8 "instruments" listed, X present half the time) and is trained on the answer
token only. It prints held-out accuracy every 250 steps (chance 0.5), so one sees which
text shapes and rotary bases can learn the lookup in the steps a CPU default can afford.

    .venv/bin/python bench/lookup_probe.py --hidden 32 --heads 4 --rope-theta 1e6
    .venv/bin/python bench/lookup_probe.py --hidden 64 --heads 4 --rope-theta 1e4
"""

from __future__ import annotations

import argparse
import time

import numpy as np

INSTRUMENTS = 8
LIST_START, LIST_END, ASK, YES, NO, FILLER = 8, 9, 10, 11, 12, 13
VOCAB = 40
SUFFIX = (14, 15, 16, 17)


def draw(rng: np.random.Generator, prefix: int, asks: int = 1) -> tuple[list[int], list[int]]:
    """One sequence (padded to a fixed length) and the positions of its answer tokens.

    With ``asks`` > 1 the list is followed by that many questions about distinct
    instruments, each with its answer, so one sequence supervises several lookups and
    its answers are not all the same (the answer prior cannot fit them).
    """
    k = int(rng.integers(1, 4))
    listed = rng.choice(INSTRUMENTS, size=k, replace=False).tolist()
    absent = [i for i in range(INSTRUMENTS) if i not in listed]
    if asks == 1:
        asked = [int(rng.choice(listed)) if rng.random() < 0.5 else int(rng.choice(absent))]
    else:
        asked = rng.choice(INSTRUMENTS, size=asks, replace=False).tolist()
    filler = [FILLER + j % 20 for j in range(prefix + 3 - k)]
    sequence = [*filler, LIST_START, *listed, LIST_END]
    answers = []
    for instrument in asked:
        sequence += [ASK, int(instrument), *SUFFIX]
        answers.append(len(sequence))
        sequence.append(YES if instrument in listed else NO)
    return sequence, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--rope-theta", type=float, default=1e6)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--prefix", type=int, default=0, help="filler tokens before the list")
    parser.add_argument(
        "--asks-per-row", type=int, default=1, help="questions per training sequence (held out: 1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=args.hidden,
        intermediate_size=2 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=max(1, args.heads // 2),
        rope_parameters={"rope_type": "default", "rope_theta": args.rope_theta},
        max_position_embeddings=512,
    )
    model = Qwen2ForCausalLM(config)
    rng = np.random.default_rng(args.seed)
    held_out = np.random.default_rng(args.seed + 1)

    def batch(n: int, source: np.random.Generator, asks: int):
        rows = [draw(source, args.prefix, asks) for _ in range(n)]
        ids = torch.tensor([sequence for sequence, _ in rows])
        labels = torch.full_like(ids, -100)
        for row, (_, answers) in enumerate(rows):
            labels[row, answers] = ids[row, answers]
        return ids, labels

    optimiser = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)
    start = time.perf_counter()
    for step in range(args.steps):
        ids, labels = batch(args.batch_size, rng, args.asks_per_row)
        loss = model(input_ids=ids, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 250 == 0 or step == args.steps - 1:
            with torch.no_grad():
                ids, _ = batch(256, held_out, 1)
                logits = model(input_ids=ids).logits[:, -2, [YES, NO]]
                said_yes = logits.argmax(-1) == 0
                accuracy = float((said_yes == (ids[:, -1] == YES)).float().mean())
            print(
                f"step {step:5d}  loss {float(loss.detach()):.3f}  held-out accuracy "
                f"{accuracy:.3f}  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
