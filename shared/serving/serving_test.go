package serving_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/serving"
)

func TestFor(t *testing.T) {
	tests := []struct {
		model, tag, lib string
		want            serving.Plan
	}{
		{"meta-llama/Llama-3.1-8B-Instruct", "text-generation", "transformers", serving.Plan{Worker: serving.VLLM, Task: "text-generation", Library: "transformers"}},
		{"Qwen/Qwen2.5-VL-7B-Instruct", "image-text-to-text", "transformers", serving.Plan{Worker: serving.VLLM, Task: "image-text-to-text", Library: "transformers"}},
		{"black-forest-labs/FLUX.1-schnell", "text-to-image", "diffusers", serving.Plan{Worker: serving.Inference, Task: "text-to-image", Library: "diffusers"}},
		{"openai/whisper-large-v3", "automatic-speech-recognition", "transformers", serving.Plan{Worker: serving.Inference, Task: "automatic-speech-recognition", Library: "transformers"}},
		{"sentence-transformers/all-MiniLM-L6-v2", "sentence-similarity", "sentence-transformers", serving.Plan{Worker: serving.Inference, Task: "sentence-similarity", Library: "sentence-transformers"}},
		{"BAAI/bge-small-en-v1.5", "feature-extraction", "sentence-transformers", serving.Plan{Worker: serving.Inference, Task: "feature-extraction", Library: "sentence-transformers"}},
		{"facebook/dinov2-small", "feature-extraction", "transformers", serving.Plan{Worker: serving.Inference, Task: "feature-extraction", Library: "transformers"}},
		{"google-bert/bert-base-uncased", "fill-mask", "transformers", serving.Plan{Worker: serving.Inference, Task: "fill-mask", Library: "transformers"}},
		{"distilbert/distilbert-base-uncased-finetuned-sst-2-english", "text-classification", "transformers", serving.Plan{Worker: serving.Inference, Task: "text-classification", Library: "transformers"}},
		{"dslim/bert-base-NER", "token-classification", "transformers", serving.Plan{Worker: serving.Inference, Task: "token-classification", Library: "transformers"}},
		{"google/vit-base-patch16-224", "image-classification", "transformers", serving.Plan{Worker: serving.Inference, Task: "image-classification", Library: "transformers"}},
	}
	for _, tt := range tests {
		got, err := serving.For(tt.model, tt.tag, tt.lib)
		if err != nil {
			t.Errorf("%s: %v", tt.model, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.model, diff)
		}
	}
}

func TestUnservedFamiliesAreNamed(t *testing.T) {
	tests := []struct {
		model, tag, lib string
		want            string // fragment of the message
	}{
		{"ResembleAI/chatterbox", "text-to-speech", "chatterbox", "is a text-to-speech model for chatterbox, a family no inference worker serves"},
		{"Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "text-to-video", "diffusers", "is a text-to-video model for diffusers"},
		{"acme/sd-onnx", "text-to-image", "onnx", "is a text-to-image model for onnx"},
		{"acme/no-metadata", "", "", "has no pipeline tag or library on the Hub"},
		{"acme/only-lib", "", "transformers", "is a transformers model with no pipeline tag"},
		{"acme/only-tag", "fill-mask", "", "is a fill-mask model with no library"},
	}
	for _, tt := range tests {
		_, err := serving.For(tt.model, tt.tag, tt.lib)
		var ue *serving.UnservedError
		if !errors.As(err, &ue) {
			t.Errorf("%s: err = %v, want an UnservedError", tt.model, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.model) || !strings.Contains(msg, tt.want) || !strings.Contains(msg, "text-to-image (diffusers)") {
			t.Errorf("%s: message %q lacks the model, %q or what is served", tt.model, msg, tt.want)
		}
	}
}
