from __future__ import annotations

import base64

import pytest

from visgate_worker.inputs import InputError, validate


def test_text_to_image_defaults_and_values():
    got = validate("text-to-image", {"prompt": "a red square"})
    assert got.prompt == "a red square"
    assert got.num_images == 1
    assert 0 <= got.seed < 2**32
    assert got.width is None
    got = validate(
        "text-to-image",
        {
            "prompt": "p",
            "negative_prompt": "blur",
            "num_inference_steps": 4,
            "guidance_scale": 0,
            "width": 512,
            "height": 768.0,
            "seed": 42,
            "num_images": 4,
        },
    )
    assert (got.num_inference_steps, got.guidance_scale, got.width, got.height, got.seed, got.num_images) == (
        4,
        0.0,
        512,
        768,
        42,
        4,
    )


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({}, "prompt is required"),
        ({"prompt": "  "}, "must not be empty"),
        ({"prompt": 3}, "prompt must be a string"),
        ({"prompt": "p", "num_inference_steps": 0}, "between 1 and 100"),
        ({"prompt": "p", "num_inference_steps": 101}, "between 1 and 100"),
        ({"prompt": "p", "num_inference_steps": "4"}, "whole number"),
        ({"prompt": "p", "num_inference_steps": True}, "whole number"),
        ({"prompt": "p", "guidance_scale": 31}, "between 0 and 30"),
        ({"prompt": "p", "width": 100}, "multiple of 8"),
        ({"prompt": "p", "height": 4096}, "between 64 and 2048"),
        ({"prompt": "p", "num_images": 5}, "between 1 and 4"),
        ({"prompt": "p", "seed": -1}, "seed"),
        ({"prompt": "p", "steps": 4}, "Unknown input field 'steps'"),
    ],
)
def test_text_to_image_bad_input(raw, needle):
    with pytest.raises(InputError) as info:
        validate("text-to-image", raw)
    assert needle in str(info.value)


def test_not_an_object():
    with pytest.raises(InputError, match="JSON object"):
        validate("fill-mask", ["a"])


@pytest.mark.parametrize("task", ["sentence-similarity", "feature-extraction", "text-classification"])
def test_texts(task):
    one = validate(task, {"inputs": "hello"})
    assert one.texts == ["hello"]
    assert one.single
    many = validate(task, {"inputs": ["a", "b"]})
    assert many.texts == ["a", "b"]
    assert not many.single


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({}, "inputs is required"),
        ({"inputs": []}, "non-empty list"),
        ({"inputs": [1]}, "list of strings"),
        ({"inputs": [""]}, "empty string"),
        ({"inputs": ["a"] * 257}, "at most 256"),
        ({"inputs": "a", "prompt": "b"}, "Unknown input field 'prompt'"),
    ],
)
def test_texts_bad_input(raw, needle):
    with pytest.raises(InputError) as info:
        validate("sentence-similarity", raw)
    assert needle in str(info.value)


def test_audio():
    data = base64.b64encode(b"RIFF....").decode()
    assert validate("automatic-speech-recognition", {"audio": data}).media.data == b"RIFF...."
    assert (
        validate("automatic-speech-recognition", {"audio": "data:audio/wav;base64," + data}).media.data
        == b"RIFF...."
    )
    got = validate("automatic-speech-recognition", {"audio_url": "https://example.org/a.wav"})
    assert got.media.url == "https://example.org/a.wav"
    assert (got.language, got.task, got.batch_size, got.return_timestamps) == (None, "transcribe", 1, False)
    whisper = validate(
        "automatic-speech-recognition",
        {"audio": data, "language": "fr", "task": "translate", "batch_size": 8, "return_timestamps": True},
    )
    assert (whisper.language, whisper.task, whisper.batch_size, whisper.return_timestamps) == (
        "fr",
        "translate",
        8,
        True,
    )


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({}, "exactly one of audio"),
        ({"audio": "eA==", "task": "summarise"}, "task must be transcribe or translate"),
        ({"audio": "eA==", "batch_size": 64}, "batch_size must be between 1 and 32"),
        ({"audio": "eA==", "return_timestamps": "yes"}, "return_timestamps must be true or false"),
        ({"audio": "eA==", "audio_url": "https://x/a"}, "exactly one of audio"),
        ({"audio": "not base64!"}, "not valid base64"),
        ({"audio_url": "http://example.org/a.wav"}, "https URL"),
        ({"audio_url": "file:///etc/passwd"}, "https URL"),
    ],
)
def test_audio_bad_input(raw, needle):
    with pytest.raises(InputError) as info:
        validate("automatic-speech-recognition", raw)
    assert needle in str(info.value)


def test_image_accepts_inputs_as_the_image():
    data = base64.b64encode(b"\x89PNG").decode()
    assert validate("image-classification", {"inputs": data}).data == b"\x89PNG"
    assert validate("image-classification", {"image": data}).data == b"\x89PNG"
    with pytest.raises(InputError, match="not both"):
        validate("image-classification", {"image": data, "inputs": data})
