from __future__ import annotations

from visgate_worker.selection import select_files, variant_of

SDXL_INDEX = {
    "_class_name": "StableDiffusionXLPipeline",
    "_diffusers_version": "0.19.0",
    "feature_extractor": [None, None],
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def test_sdxl_like_repo_takes_fp16_safetensors_once():
    siblings = {
        ".gitattributes": 1,
        "README.md": 1,
        "model_index.json": 1,
        "sd_xl_turbo_1.0.safetensors": 13_000,  # single-file copy at the root
        "sd_xl_turbo_1.0_fp16.safetensors": 6_900,
        "scheduler/scheduler_config.json": 1,
        "text_encoder/config.json": 1,
        "text_encoder/model.safetensors": 492,
        "text_encoder/model.fp16.safetensors": 246,
        "text_encoder/model.onnx": 492,
        "text_encoder_2/config.json": 1,
        "text_encoder_2/model.safetensors": 2_778,
        "text_encoder_2/model.fp16.safetensors": 1_389,
        "tokenizer/merges.txt": 1,
        "tokenizer/vocab.json": 1,
        "tokenizer/special_tokens_map.json": 1,
        "tokenizer/tokenizer_config.json": 1,
        "tokenizer_2/merges.txt": 1,
        "tokenizer_2/vocab.json": 1,
        "unet/config.json": 1,
        "unet/diffusion_pytorch_model.safetensors": 10_000,
        "unet/diffusion_pytorch_model.fp16.safetensors": 5_000,
        "unet/diffusion_pytorch_model.bin": 10_000,
        "vae/config.json": 1,
        "vae/diffusion_pytorch_model.safetensors": 335,
        "vae/diffusion_pytorch_model.fp16.safetensors": 167,
        "vae_decoder/model.onnx": 1,
        "vae_decoder/config.json": 1,
    }
    got = select_files(siblings, "diffusers", SDXL_INDEX)
    assert got == [
        "model_index.json",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.fp16.safetensors",
        "text_encoder_2/config.json",
        "text_encoder_2/model.fp16.safetensors",
        "tokenizer/merges.txt",
        "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json",
        "tokenizer_2/merges.txt",
        "tokenizer_2/vocab.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    ]
    assert variant_of(got) == "fp16"


def test_sharded_transformers_repo_takes_the_model_series_and_its_index():
    siblings = {
        "config.json": 1,
        "generation_config.json": 1,
        "model-00001-of-00002.safetensors": 5_000,
        "model-00002-of-00002.safetensors": 3_000,
        "model.safetensors.index.json": 1,
        "pytorch_model-00001-of-00002.bin": 5_000,
        "pytorch_model-00002-of-00002.bin": 3_000,
        "pytorch_model.bin.index.json": 1,
        "tf_model.h5": 8_000,
        "onnx/model.onnx": 8_000,
        "onnx/config.json": 1,
        "tokenizer.json": 1,
        "tokenizer_config.json": 1,
        "preprocessor_config.json": 1,
    }
    assert select_files(siblings, "transformers") == [
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_bin_only_repo_takes_the_largest_root_bin():
    siblings = {"config.json": 1, "pytorch_model.bin": 400, "training_args.bin": 4, "vocab.txt": 1}
    assert select_files(siblings, "transformers") == ["config.json", "pytorch_model.bin", "vocab.txt"]
    assert variant_of(["pytorch_model.bin"]) is None


def test_sentence_transformers_adds_module_weights():
    siblings = {
        "config.json": 1,
        "modules.json": 1,
        "model.safetensors": 90,
        "pytorch_model.bin": 90,
        "1_Pooling/config.json": 1,
        "2_Dense/config.json": 1,
        "2_Dense/model.safetensors": 3,
        "2_Dense/pytorch_model.bin": 3,
        "onnx/model.onnx": 90,
        "openvino/openvino_model.xml": 1,
        "sentence_bert_config.json": 1,
        "tokenizer.json": 1,
    }
    assert select_files(siblings, "sentence-transformers") == [
        "1_Pooling/config.json",
        "2_Dense/config.json",
        "2_Dense/model.safetensors",
        "config.json",
        "model.safetensors",
        "modules.json",
        "sentence_bert_config.json",
        "tokenizer.json",
    ]


def test_flux_like_repo_with_sharded_component_and_unchosen_index():
    index = {
        "_class_name": "FluxPipeline",
        "transformer": ["diffusers", "FluxTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    siblings = {
        "model_index.json": 1,
        "flux1-schnell.safetensors": 23_000,
        "ae.safetensors": 300,
        "transformer/config.json": 1,
        "transformer/diffusion_pytorch_model-00001-of-00003.safetensors": 9_000,
        "transformer/diffusion_pytorch_model-00002-of-00003.safetensors": 9_000,
        "transformer/diffusion_pytorch_model-00003-of-00003.safetensors": 5_000,
        "transformer/diffusion_pytorch_model.safetensors.index.json": 1,
        "transformer/diffusion_pytorch_model.safetensors.index.fp16.json": 1,
        "vae/config.json": 1,
        "vae/diffusion_pytorch_model.safetensors": 300,
    }
    got = select_files(siblings, "diffusers", index)
    assert "transformer/diffusion_pytorch_model.safetensors.index.json" in got
    assert "transformer/diffusion_pytorch_model.safetensors.index.fp16.json" not in got
    assert "flux1-schnell.safetensors" not in got
    assert "ae.safetensors" not in got
    assert sum(f.endswith(".safetensors") for f in got) == 4
    assert variant_of(got) is None
