"""Every transformers task loader on tiny models built here from configs
(fixed seed, nothing downloaded): real loading and inference on the CPU."""

from __future__ import annotations

import base64
import io
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tone import tone_wav
from visgate_worker import inputs, loaders
from visgate_worker.config import Config
from visgate_worker.handler import make_handler

LABELS = {0: "NEGATIVE", 1: "POSITIVE"}
ENTITIES = {0: "O", 1: "B-PER", 2: "I-PER"}


def _bert_tokenizer():
    from transformers import BertTokenizer

    words = ["hello", "world", "paris", "is", "a", "city", "the", "red", "square"]
    vocab = list(
        dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase, *words])
    )
    return BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, model_max_length=64)


def _bert_config(tokenizer, **kw):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        **kw,
    )


def _save(model, processor, out: Path) -> Path:
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import (
        BertForMaskedLM,
        BertForSequenceClassification,
        BertForTokenClassification,
        BertModel,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    root = tmp_path_factory.mktemp("tiny-transformers")
    tok = _bert_tokenizer()
    out: dict[str, Path] = {}
    torch.manual_seed(0)
    out["fill-mask"] = _save(BertForMaskedLM(_bert_config(tok)), tok, root / "fill-mask")
    cls_cfg = _bert_config(tok, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    out["text-classification"] = _save(BertForSequenceClassification(cls_cfg), tok, root / "text-cls")
    tok_cfg = _bert_config(tok, id2label=ENTITIES, label2id={v: k for k, v in ENTITIES.items()})
    out["token-classification"] = _save(BertForTokenClassification(tok_cfg), tok, root / "token-cls")
    out["feature-extraction"] = _save(BertModel(_bert_config(tok)), tok, root / "features")

    vit = ViTConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label={0: "cat", 1: "dog", 2: "square"},
        label2id={"cat": 0, "dog": 1, "square": 2},
    )
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    out["image-classification"] = _save(ViTForImageClassification(vit), processor, root / "image-cls")

    chars = ["<pad>", "<s>", "</s>", "<unk>", "|", *string.ascii_uppercase, "'"]
    vocab_file = root / "vocab.json"
    vocab_file.write_text(__import__("json").dumps({c: i for i, c in enumerate(chars)}))
    ctc_tok = Wav2Vec2CTCTokenizer(str(vocab_file), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, return_attention_mask=False)
    w2v = Wav2Vec2Config(
        vocab_size=len(chars),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    out["automatic-speech-recognition"] = _save(
        Wav2Vec2ForCTC(w2v), Wav2Vec2Processor(feature_extractor=extractor, tokenizer=ctc_tok), root / "asr"
    )
    return out


def _run(task: str, path: Path, raw: dict) -> dict:
    cfg = Config(model=f"tiny/{task}", task=task, library="transformers")
    model = loaders.load(cfg, path, ())
    model.warmup()
    return make_handler(model, cfg)({"id": "j", "input": raw})


def test_fill_mask(tiny):
    out = _run("fill-mask", tiny["fill-mask"], {"inputs": ["paris is a [MASK]", "hello [MASK]"]})
    preds = out["predictions"]
    assert len(preds) == 2
    assert {"score", "token", "token_str", "sequence"} <= set(preds[0][0])
    assert isinstance(preds[0][0]["score"], float)
    bad = _run("fill-mask", tiny["fill-mask"], {"inputs": "no mask here"})
    assert bad == {"error": "Each input must hold the mask token [MASK] exactly once."}


def test_text_classification(tiny):
    out = _run("text-classification", tiny["text-classification"], {"inputs": ["hello world", "red square"]})
    preds = out["predictions"]
    assert len(preds) == 2
    for p in preds:
        (entry,) = p if isinstance(p, list) else [p]
        assert entry["label"] in LABELS.values()
        assert 0 <= entry["score"] <= 1


def test_token_classification(tiny):
    out = _run("token-classification", tiny["token-classification"], {"inputs": "hello paris"})
    (entities,) = out["predictions"]
    assert isinstance(entities, list)
    for e in entities:
        assert {"entity_group", "score", "word", "start", "end"} <= set(e)
        assert isinstance(e["score"], float)


def test_feature_extraction_with_transformers(tiny):
    out = _run("feature-extraction", tiny["feature-extraction"], {"inputs": ["hello world", "a city"]})
    vectors = out["embeddings"]
    assert len(vectors) == 2
    assert {len(v) for v in vectors} == {16}


def _png(size: tuple[int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_image_classification(tiny):
    out = _run("image-classification", tiny["image-classification"], {"image": _png((48, 40))})
    labels = [p["label"] for p in out["predictions"]]
    assert set(labels) <= {"cat", "dog", "square"}
    assert labels
    bad = _run(
        "image-classification", tiny["image-classification"], {"image": base64.b64encode(b"nope").decode()}
    )
    assert bad == {"error": "The image could not be decoded: send PNG, JPEG or WebP."}


def test_speech_recognition_decodes_and_resamples(tiny):
    # Stereo 44.1 kHz WAV: mixed down and resampled to the model's 16 kHz.
    stereo = tone_wav(1.5, 44100, channels=2)
    out = _run("automatic-speech-recognition", tiny["automatic-speech-recognition"], {"audio": stereo})
    assert isinstance(out["text"], str)
    bad = _run(
        "automatic-speech-recognition",
        tiny["automatic-speech-recognition"],
        {"audio": base64.b64encode(b"not audio at all").decode()},
    )
    assert bad == {"error": "The audio could not be decoded: send WAV, FLAC, OGG or MP3."}


def test_decode_audio_resamples_to_the_model_rate():
    from visgate_worker.loaders.media import decode_audio

    samples = decode_audio(base64.b64decode(tone_wav(2.0, 44100, channels=2)), 16000)
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert abs(samples.size - 32000) <= 1


def test_media_url_must_be_https():
    with pytest.raises(inputs.InputError):
        inputs.validate("image-classification", {"image_url": "http://127.0.0.1/x.png"})


@pytest.fixture(scope="module")
def unbounded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Text models whose tokenizer declares no limit (as many Hub repos'
    don't): only the 64 position embeddings bound the input."""
    from transformers import (
        BertForMaskedLM,
        BertForSequenceClassification,
        BertForTokenClassification,
        BertModel,
        BertTokenizer,
    )

    root = tmp_path_factory.mktemp("tiny-unbounded")
    tok = _bert_tokenizer()
    tok.save_pretrained(root / "tok")
    tok = BertTokenizer.from_pretrained(root / "tok", model_max_length=int(1e30))
    torch.manual_seed(0)
    cls_cfg = _bert_config(tok, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    tok_cfg = _bert_config(tok, id2label=ENTITIES, label2id={v: k for k, v in ENTITIES.items()})
    return {
        "text-classification": _save(BertForSequenceClassification(cls_cfg), tok, root / "cls"),
        "token-classification": _save(BertForTokenClassification(tok_cfg), tok, root / "tok-cls"),
        "fill-mask": _save(BertForMaskedLM(_bert_config(tok)), tok, root / "fill-mask"),
        "feature-extraction": _save(BertModel(_bert_config(tok)), tok, root / "features"),
    }


LONG = " ".join(["paris is a red city"] * 40)  # 200 words: past the 64 positions


@pytest.mark.parametrize("task", ["text-classification", "token-classification", "feature-extraction"])
def test_long_text_is_truncated_and_said(unbounded, task):
    out = _run(task, unbounded[task], {"inputs": ["hello world", LONG]})
    assert "error" not in out, out
    key = "embeddings" if task == "feature-extraction" else "predictions"
    assert len(out[key]) == 2
    assert out["truncated"] == [1]
    assert out["max_tokens"] == 64


def test_fill_mask_long_text_is_truncated_and_said(unbounded):
    out = _run("fill-mask", unbounded["fill-mask"], {"inputs": ["hello [MASK]", "the [MASK] " + LONG]})
    assert "error" not in out, out
    assert len(out["predictions"]) == 2
    assert out["truncated"] == [1]
    late = _run("fill-mask", unbounded["fill-mask"], {"inputs": LONG + " [MASK]"})
    assert late["error"].startswith("The mask token is token ")
    assert "limit of 64 tokens" in late["error"]


def test_batch_gives_what_one_by_one_gives(tiny):
    """One forward pass for the whole list: padding changes nothing."""
    texts = ["hello world", "paris is a red city", "a"]
    for task in ("text-classification", "feature-extraction", "token-classification"):
        together = _run(task, tiny[task], {"inputs": texts})
        alone = [_run(task, tiny[task], {"inputs": t}) for t in texts]
        key = "embeddings" if task == "feature-extraction" else "predictions"
        for i, single in enumerate(alone):
            assert np.allclose(
                np.asarray(_scores(together[key][i])), np.asarray(_scores(single[key][0])), atol=1e-5
            ), task


def _scores(value):
    if isinstance(value, dict):
        return [value["score"]]
    if isinstance(value, list) and value and not isinstance(value[0], float):
        return [s for v in value for s in _scores(v)]
    return value


@pytest.mark.parametrize("task", ["text-classification", "fill-mask", "feature-extraction"])
def test_one_forward_pass_per_request(tiny, task):
    cfg = Config(model=f"tiny/{task}", task=task, library="transformers")
    model = loaders.load(cfg, tiny[task], ())
    net = model.model if task == "feature-extraction" else model.pipe.model
    calls = []
    net.register_forward_hook(lambda *_: calls.append(1))
    texts = ["hello [MASK]", "paris is a [MASK]", "the red [MASK]", "a [MASK]"]
    out = make_handler(model, cfg)({"id": "j", "input": {"inputs": texts}})
    assert "error" not in out, out
    assert len(calls) == 1


def test_whisper_options(tiny_models):
    path = tiny_models / "visgate-tiny" / "speech-recognition"
    cfg = Config(
        model="visgate-tiny/speech-recognition", task="automatic-speech-recognition", library="transformers"
    )
    model = loaders.load(cfg, path, ())
    handler = make_handler(model, cfg)
    out = handler({"id": "j", "input": {"audio": tone_wav(1.0)}})
    assert isinstance(out["text"], str)
    assert out["parameters"] == {
        "language": None,
        "task": "transcribe",
        "batch_size": 1,
        "return_timestamps": False,
        "chunk_length_s": None,
        "seconds": 1.0,
    }
    raw = {"audio": tone_wav(1.0), "language": "fr", "task": "translate", "return_timestamps": True}
    stamped = handler({"id": "j", "input": raw})
    assert "error" not in stamped, stamped
    assert isinstance(stamped["chunks"], list)
    for chunk in stamped["chunks"]:
        assert set(chunk) == {"text", "timestamp"}
    assert (stamped["parameters"]["language"], stamped["parameters"]["task"]) == ("fr", "translate")
    unknown = handler({"id": "j", "input": {"audio": tone_wav(1.0), "language": "tlh"}})
    assert "error" in unknown
    # Long audio: 30 s chunks (3 for 65 s), batch_size of them per forward pass.
    calls: list[int] = []
    model.pipe.model.model.encoder.register_forward_hook(lambda *_: calls.append(1))
    counts = {}
    for batch in (1, 4):
        calls.clear()
        raw = {"audio": tone_wav(65), "batch_size": batch, "language": "en"}
        long = handler({"id": "j", "input": raw})
        assert "error" not in long, long
        assert long["parameters"]["chunk_length_s"] == 30
        counts[batch] = len(calls)
    assert counts[1] == 3 * counts[4] > 0


def test_whisper_options_refused_by_other_models(tiny):
    raw = {"audio": tone_wav(1.0), "language": "fr"}
    out = _run("automatic-speech-recognition", tiny["automatic-speech-recognition"], raw)
    assert out == {"error": "language and task are Whisper options; this model takes neither."}
