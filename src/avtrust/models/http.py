"""OpenAI-compatible HTTP endpoint adapter: closed models and locally served ones
(vLLM, SGLang, llama.cpp server...) behind ``POST {base_url}/chat/completions``.

The API key is read from the environment variable the config names
(``models.<name>.api_key_env``) at request time. It is sent only in the
``Authorization`` header; it is never stored in the prepared model folder, never
logged, not part of ``repr()``, and scrubbed from any error text the server returns.
Without ``api_key_env`` (a keyless local server) no ``Authorization`` header is sent.

Media travel as content parts: the soundtrack as 16 kHz WAV (``input_audio``) and the
video as a few JPEG frames (``image_url`` data URLs), both made with ffmpeg.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlparse

from avtrust.media.ffmpeg import run
from avtrust.media.probe import probe
from avtrust.models.media import read_audio
from avtrust.models.registry import ModelError, ModelSpec

log = logging.getLogger(__name__)
PathLike = str | os.PathLike


class OpenAIEndpoint:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        *,
        name: str = "endpoint",
        timeout_s: float = 120.0,
        frames: int = 8,
    ):
        scheme = urlparse(base_url).scheme
        if scheme not in ("http", "https"):
            raise ModelError(f"model {name!r}: base URL {base_url!r} is not http(s)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.name = name
        self.timeout_s = timeout_s
        self.frames = frames

    @classmethod
    def from_spec(cls, spec: ModelSpec, **kwargs) -> OpenAIEndpoint:
        return cls(
            spec.location,
            spec.model,
            spec.api_key_env,
            name=spec.name,
            timeout_s=spec.timeout_s,
            frames=int(spec.options.get("frames", 8)),
            **kwargs,
        )

    def __repr__(self) -> str:
        return (
            f"OpenAIEndpoint(name={self.name!r}, base_url={self.base_url!r}, "
            f"model={self.model!r}, api_key_env={self.api_key_env!r})"
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            headers["Authorization"] = f"Bearer {self._key()}"
        return headers

    def _key(self) -> str:
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise ModelError(
                f"model {self.name!r}: environment variable {self.api_key_env} is not set "
                f"(it holds the API key for {self.base_url})"
            )
        return key

    def chat(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        """One chat completion; returns the first choice's text."""
        headers = self._headers()  # before anything else: a missing key sends nothing
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": temperature,
            }
        ).encode("utf-8")
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions",
            data=body,
            method="POST",
            headers=headers,
        )
        log.info("POST %s/chat/completions (model %s)", self.base_url, self.model)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise ModelError(
                self._scrub(f"model {self.name!r}: HTTP {exc.code} from {self.base_url}: {detail}")
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ModelError(
                self._scrub(f"model {self.name!r}: cannot reach {self.base_url}: {exc}")
            ) from None
        try:
            payload = json.loads(body.decode("utf-8"))
        except ValueError:  # not UTF-8 or not JSON: a proxy's error page, a broken server
            raise ModelError(
                f"model {self.name!r}: response from {self.base_url} is not JSON "
                f"({len(body)} bytes starting {body[:60]!r})"
            ) from None
        try:
            return payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise ModelError(
                f"model {self.name!r}: unexpected response from {self.base_url} "
                f"(keys: {sorted(payload) if isinstance(payload, dict) else type(payload)})"
            ) from None

    def _scrub(self, text: str) -> str:
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return text.replace(key, "***") if key else text

    def media_parts(self, path: PathLike) -> list[dict]:
        """Content parts for a clip: JPEG frames of its video, WAV of its audio."""
        info = probe(path)
        parts: list[dict] = []
        if info.has_video:
            for jpeg in jpeg_frames(path, self.frames, info.duration):
                url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
                parts.append({"type": "image_url", "image_url": {"url": url}})
        if info.has_audio:
            wav = wav_bytes(read_audio(path, 16000, info), 16000)
            parts.append(
                {
                    "type": "input_audio",
                    "input_audio": {"data": base64.b64encode(wav).decode("ascii"), "format": "wav"},
                }
            )
        return parts

    def generate(
        self,
        paths: Sequence[PathLike | None],
        questions: Sequence[str],
        *,
        max_new_tokens: int = 256,
        system: str | None = None,
    ) -> list[str]:
        """One request per (clip, question); a None path sends the text alone."""
        out = []
        for path, question in zip(paths, questions, strict=True):
            content = ([] if path is None else self.media_parts(path)) + [
                {"type": "text", "text": question}
            ]
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": content}
            ]
            out.append(self.chat(messages, max_tokens=max_new_tokens))
        return out


def wav_bytes(audio, sample_rate: int) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, audio, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def jpeg_frames(path: PathLike, n: int, duration: float, max_side: int = 512) -> list[bytes]:
    """``n`` evenly spaced frames of the clip as JPEG files (ffmpeg's MJPEG encoder)."""
    import ffmpeg

    rate = max(n / duration, 1e-3) if duration else 1.0
    stream = (
        ffmpeg.input(str(path))
        .video.filter("fps", rate)
        .filter("scale", f"min({max_side},iw)", -2)
        .output("pipe:", format="image2pipe", vcodec="mjpeg", frames=n, map_metadata=-1)
    )
    data = run(stream, what=f"JPEG frames of {path}")
    # Each JPEG starts with SOI (FF D8) and ends with EOI (FF D9); FF never occurs
    # unescaped inside the entropy-coded data, so EOI+SOI marks a boundary.
    frames = data.split(b"\xff\xd9\xff\xd8")
    if len(frames) > 1:
        frames = (
            [frames[0] + b"\xff\xd9"]
            + [b"\xff\xd8" + f + b"\xff\xd9" for f in frames[1:-1]]
            + [b"\xff\xd8" + frames[-1]]
        )
    return [f for f in frames if f]
