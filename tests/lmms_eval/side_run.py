"""Run inside the lmms-eval virtual environment (tests/lmms_eval/test_lmms_eval.py).

Loads every exported task through lmms-eval's TaskManager, then evaluates the tasks
named on the command line with ``avtrust_options``, a model registered here that answers
from each sample's options in a fixed rotation of reply styles (a bare letter, the
option's text in a sentence, a wrong option, something unparseable; yes/no phrasings;
m2 descriptions that do and do not name the sound) — so the scores depend on the
exported parsing and metrics. Writes what it saw as JSON.

usage: side_run.py TASK_FOLDER OUT_JSON LIMIT TASK [TASK ...]
"""

import json
import string
import sys
from pathlib import Path

from lmms_eval.api.model import lmms
from lmms_eval.api.registry import get_model, register_model
from lmms_eval.evaluator import simple_evaluate
from lmms_eval.tasks import TaskManager, get_task_dict

SOUNDS = {"wind": "wind blowing", "bird": "birds chirping", "rain": "rain falling"}


def reply(doc: dict, k: int) -> str:
    options = doc["options"]
    if not options:  # m2: the sound, a wrong one, the instrument, both
        heard = SOUNDS.get(doc["sound_type"], doc["sound_type"])
        seen = (doc["instruments"] or ["guitar"])[0]
        return [
            f"Based on the video, a {seen} is played. Based on the audio, I hear {heard}.",
            "Based on the audio, I hear a dog barking.",
            f"Based on the audio, I hear the {seen}.",
            # right only when the instrument is really heard too (a mixed soundtrack)
            f"Based on the audio, I hear {heard} and the {seen}.",
        ][k % 4]
    if {o.lower() for o in options} <= {"yes", "no"}:
        replies = ["Yes, I can hear it.", "There is no such sound.", "I can hear a violin."]
        return (replies + ["Maybe.", "Yes."])[k % 5]
    right = doc["answer_index"]
    wrong = (right + 1) % len(options)
    return [
        string.ascii_uppercase[right],
        f"The answer is ({string.ascii_uppercase[wrong]}).",
        f"It is {options[right]}.",
        "I am not sure.",
    ][k % 4]


@register_model("avtrust_options")
class AnswerFromOptions(lmms):
    """Replies from the sample's options; reads every clip the task hands over."""

    def __init__(self, **kwargs):
        super().__init__()
        self.clips, self.prompts = [], []

    def generate_until(self, requests):
        out = []
        for request in requests:
            context, generation, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            self.prompts.append(
                {"id": doc["id"], "prompt": context, "max_new_tokens": generation["max_new_tokens"]}
            )
            for visual in doc_to_visual(doc):
                if isinstance(visual, str):  # a clip with pictures: its path
                    assert Path(visual).is_file(), visual
                    self.clips.append({"id": doc["id"], "path": visual})
                else:  # decoded audio (an audio-only clip)
                    seconds = len(visual["array"]) / visual["sampling_rate"]
                    self.clips.append({"id": doc["id"], "audio_seconds": seconds})
            out.append(reply(doc, doc_id))
        return out

    def loglikelihood(self, requests):
        raise NotImplementedError("the exported tasks generate")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("the exported tasks are single-turn")


def main(folder: str, out_json: str, limit: str, *run: str) -> None:
    manager = TaskManager(include_path=folder)
    exported = sorted(p.stem for p in Path(folder).glob("*.yaml"))
    loaded = {}
    for name in exported:
        for task_name, task in get_task_dict([name], manager).items():
            if hasattr(task, "test_docs"):  # a task (groups map to their tasks' dict)
                loaded[str(getattr(task_name, "group_name", task_name))] = len(task.test_docs())
            else:
                loaded[name] = {str(k): len(v.test_docs()) for k, v in task.items()}
    model = get_model("avtrust_options")()
    results = simple_evaluate(
        model=model, tasks=list(run), limit=int(limit), task_manager=manager, log_samples=True
    )
    samples = {
        task: [
            {"doc_id": s["doc_id"], "id": s["doc"]["id"], "reply": s["resps"][0][0]} for s in rows
        ]
        for task, rows in results["samples"].items()
    }
    Path(out_json).write_text(
        json.dumps(
            {
                "all_tasks": sorted(manager.all_tasks),
                "loaded": loaded,
                "results": results["results"],
                "samples": samples,
                "clips": model.clips,
                "prompts": model.prompts,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
