"""Writes the tiny real models that the local simulators serve.

    python inference/tools/make_tiny_models.py --out DIR

produces, laid out as Hub repositories (docs/worker.md, "Local environment and tests"):

    DIR/visgate-tiny/text-to-image/             a diffusers StableDiffusionPipeline
    DIR/visgate-tiny/sentence-embeddings/       a sentence-transformers BERT model
    DIR/visgate-tiny/speech-recognition/        a Whisper model (transformers)
    DIR/visgate-tiny/text-classification/       BERT with a sequence-classification head
    DIR/visgate-tiny/token-classification/      BERT with a token-classification head
    DIR/visgate-tiny/fill-mask/                 BERT with its masked-LM head
    DIR/visgate-tiny/image-classification/      a ViT image classifier
    DIR/visgate-tiny/feature-extraction/        a plain BERT model (transformers)

Every weight is drawn from a fixed seed, the tokenizers are built from
vocabularies written here, and nothing is fetched: the output is the same on
every run with the same locked packages. The models are real (they load with
the same code as any Hub model and run on the CPU in seconds) but untrained.
"""

from __future__ import annotations

import argparse
import json
import string
import tempfile
from pathlib import Path

import torch

SEED = 0

TEXT_TO_IMAGE = "visgate-tiny/text-to-image"
SENTENCE_EMBEDDINGS = "visgate-tiny/sentence-embeddings"
SPEECH_RECOGNITION = "visgate-tiny/speech-recognition"
TEXT_CLASSIFICATION = "visgate-tiny/text-classification"
TOKEN_CLASSIFICATION = "visgate-tiny/token-classification"
FILL_MASK = "visgate-tiny/fill-mask"
IMAGE_CLASSIFICATION = "visgate-tiny/image-classification"
FEATURE_EXTRACTION = "visgate-tiny/feature-extraction"


def _byte_alphabet() -> list[str]:
    """CLIP's byte-to-unicode alphabet: one printable character per byte."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def _clip_tokenizer():
    """A CLIP BPE tokenizer over single bytes and a few merges: every text encodes."""
    from transformers import CLIPTokenizer

    alphabet = _byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet]
    merges = [
        ("r", "e"),
        ("re", "d</w>"),
        ("s", "q"),
        ("sq", "u"),
        ("squ", "a"),
        ("squa", "r"),
        ("squar", "e</w>"),
    ]
    tokens += [left + right for left, right in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def make_text_to_image(out: Path) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = _clip_tokenizer()
    # Tiny configs after diffusers' own pipeline tests; a 2x VAE, so a 64x64
    # image is a 32x32 latent, the UNet's sample size.
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=4,
    )
    torch.manual_seed(SEED)
    vae = AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
    )
    torch.manual_seed(SEED)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            layer_norm_eps=1e-5,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out, safe_serialization=True)
    _write_repo_meta(
        out,
        pipeline_tag="text-to-image",
        library_name="diffusers",
        tags=["diffusers", "safetensors", "text-to-image", "stable-diffusion"],
    )


def _bert_vocab() -> list[str]:
    words = [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "at",
        "is",
        "are",
        "was",
        "be",
        "this",
        "that",
        "it",
        "with",
        "for",
        "as",
        "by",
        "from",
        "red",
        "green",
        "blue",
        "white",
        "black",
        "square",
        "circle",
        "cat",
        "dog",
        "house",
        "tree",
        "sky",
        "sea",
        "car",
        "hello",
        "world",
        "model",
        "embedding",
        "sentence",
        "text",
        "image",
        "small",
        "tiny",
        "big",
        "good",
        "bad",
    ]
    letters = list(string.ascii_lowercase + string.digits + string.punctuation)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = ["##" + c for c in string.ascii_lowercase + string.digits]
    return list(dict.fromkeys(specials + letters + pieces + words))


def make_sentence_embeddings(out: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = {tok: i for i, tok in enumerate(_bert_vocab())}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=128)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(SEED)
        bert = BertModel(
            BertConfig(
                vocab_size=len(tokenizer),
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=128,
            ),
            add_pooling_layer=False,
        )
        base = Path(tmp) / "bert"
        bert.save_pretrained(base, safe_serialization=True)
        tokenizer.save_pretrained(base)
        transformer = Transformer(str(base), max_seq_length=128)
        pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
        model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")
        model.save(str(out), safe_serialization=True)
    _write_repo_meta(
        out,
        pipeline_tag="sentence-similarity",
        library_name="sentence-transformers",
        tags=["sentence-transformers", "safetensors", "bert", "feature-extraction", "sentence-similarity"],
    )


def _bert_tokenizer():
    from transformers import BertTokenizer

    vocab = {tok: i for i, tok in enumerate(_bert_vocab())}
    return BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=128)


def _bert_config(tokenizer, **kw):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        **kw,
    )


def _save_transformers(out: Path, model, processor, *, pipeline_tag: str, tags: list[str]) -> None:
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    _write_repo_meta(out, pipeline_tag=pipeline_tag, library_name="transformers", tags=tags)


def _labels(names: list[str]) -> dict:
    return {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


def make_text_classification(out: Path) -> None:
    from transformers import BertForSequenceClassification

    tok = _bert_tokenizer()
    torch.manual_seed(SEED)
    model = BertForSequenceClassification(_bert_config(tok, **_labels(["NEGATIVE", "POSITIVE"])))
    _save_transformers(
        out, model, tok, pipeline_tag="text-classification", tags=["transformers", "safetensors", "bert"]
    )


def make_token_classification(out: Path) -> None:
    from transformers import BertForTokenClassification

    tok = _bert_tokenizer()
    torch.manual_seed(SEED)
    model = BertForTokenClassification(
        _bert_config(tok, **_labels(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]))
    )
    _save_transformers(
        out, model, tok, pipeline_tag="token-classification", tags=["transformers", "safetensors", "bert"]
    )


def make_fill_mask(out: Path) -> None:
    from transformers import BertForMaskedLM

    tok = _bert_tokenizer()
    torch.manual_seed(SEED)
    model = BertForMaskedLM(_bert_config(tok))
    _save_transformers(
        out, model, tok, pipeline_tag="fill-mask", tags=["transformers", "safetensors", "bert"]
    )


def make_feature_extraction(out: Path) -> None:
    from transformers import BertModel

    tok = _bert_tokenizer()
    torch.manual_seed(SEED)
    model = BertModel(_bert_config(tok))
    _save_transformers(
        out, model, tok, pipeline_tag="feature-extraction", tags=["transformers", "safetensors", "bert"]
    )


def make_image_classification(out: Path) -> None:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(SEED)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        **_labels(["cat", "dog", "square", "circle"]),
    )
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    _save_transformers(
        out,
        ViTForImageClassification(config),
        processor,
        pipeline_tag="image-classification",
        tags=["transformers", "safetensors", "vit"],
    )


WHISPER_LANGUAGES = ("en", "fr", "de")


def _whisper_tokenizer():
    """Whisper's byte-level BPE over single bytes, its special tokens (with
    <|notimestamps|> the last one, as Whisper's decoding expects) and the
    1,501 timestamp tokens after them."""
    from transformers import WhisperTokenizer

    alphabet = _byte_alphabet()
    merges = [("h", "e"), ("he", "l"), ("hel", "l"), ("hell", "o"), ("Ġ", "w")]
    tokens = alphabet + [left + right for left, right in merges]
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{lang}|>" for lang in WHISPER_LANGUAGES],
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
    ]
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    tok = WhisperTokenizer(vocab=vocab, merges=merges, model_max_length=64, pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": specials[1:]})
    tok.add_tokens(stamps)
    return tok, specials


def make_speech_recognition(out: Path) -> None:
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    tok, specials = _whisper_tokenizer()
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    config = WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=80,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=64,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=[],
        begin_suppress_tokens=[eot],
    )
    torch.manual_seed(SEED)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        max_length=24,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=[],
        begin_suppress_tokens=[eot],
        is_multilingual=True,
        lang_to_id={f"<|{lang}|>": ids[f"<|{lang}|>"] for lang in WHISPER_LANGUAGES},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50,
        return_timestamps=False,
    )
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tok)
    _save_transformers(
        out,
        model,
        processor,
        pipeline_tag="automatic-speech-recognition",
        tags=["transformers", "safetensors", "whisper", "audio"],
    )


def _write_repo_meta(out: Path, *, pipeline_tag: str, library_name: str, tags: list[str]) -> None:
    """Writes the model card (README.md) a Hub repository carries: its YAML
    front matter says pipeline_tag, library_name and tags, which the Hub (and
    the Hub simulators) read from it."""
    # JSON strings are YAML strings: no value can change type or break the
    # front matter.
    front = [f"pipeline_tag: {json.dumps(pipeline_tag)}", f"library_name: {json.dumps(library_name)}"]
    front.append("tags: " + json.dumps(tags))
    repo = f"{out.parent.name}/{out.name}"
    card = (
        "---\n" + "\n".join(front) + "\n---\n\n"
        f"# {repo}\n\n"
        "A tiny, randomly initialised model for tests, written by "
        "inference/tools/make_tiny_models.py: it loads and runs like any Hub "
        "model of its kind, and its outputs mean nothing.\n"
    )
    (out / "README.md").write_text(card, encoding="utf-8")


MAKERS = (
    (TEXT_TO_IMAGE, make_text_to_image),
    (SENTENCE_EMBEDDINGS, make_sentence_embeddings),
    (SPEECH_RECOGNITION, make_speech_recognition),
    (TEXT_CLASSIFICATION, make_text_classification),
    (TOKEN_CLASSIFICATION, make_token_classification),
    (FILL_MASK, make_fill_mask),
    (IMAGE_CLASSIFICATION, make_image_classification),
    (FEATURE_EXTRACTION, make_feature_extraction),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory to write the repos into")
    args = parser.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    for repo, make in MAKERS:
        target = args.out / repo
        target.mkdir(parents=True, exist_ok=True)
        make(target)
        size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        print(f"wrote {repo} ({size // 1024} KiB) to {target}")


if __name__ == "__main__":
    main()
