package gpu_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// TestChoiceForRealModels runs real models' Hub metadata (hubsim's
// fixtures) through the VRAM estimate and the automatic choice, and checks
// the GPUs against what a careful engineer would pick: the cheapest card
// that holds the model with room for activations, then bigger pools as
// fallbacks in case of a stock-out.
func TestChoiceForRealModels(t *testing.T) {
	s := hubsim.New()
	defer s.Close()
	s.SetAcceptAnyToken(true)
	c := huggingface.NewClient(s.URL, nil)
	for _, tc := range []struct {
		id     string
		vram   int
		pools  []string
		reason string
	}{
		{"stabilityai/sdxl-turbo", 8, []string{"AMPERE_16", "AMPERE_24", "ADA_24"}, "fp16 SDXL (~7 GB) fits a 16 GB A4000"},
		{"stable-diffusion-v1-5/stable-diffusion-v1-5", 4, []string{"AMPERE_16", "AMPERE_24", "ADA_24"}, "SD 1.5 needs ~4 GB: the smallest pool"},
		{"black-forest-labs/FLUX.1-schnell", 38, []string{"AMPERE_48", "ADA_48_PRO", "AMPERE_80"}, "12B transformer + T5-XXL in bf16 (~33 GB): a 48 GB A40, not an 80 GB card"},
		{"mistralai/Mistral-7B-Instruct-v0.3", 17, []string{"AMPERE_24", "ADA_24", "AMPERE_48"}, "7B bf16 + KV cache: a 24 GB card, 16 GB is too tight"},
		{"meta-llama/Llama-3.1-8B-Instruct", 19, []string{"AMPERE_24", "ADA_24", "AMPERE_48"}, "8B bf16 (16 GB) + 4k KV cache: 24 GB"},
		{"Qwen/Qwen2.5-14B-Instruct", 34, []string{"AMPERE_48", "ADA_48_PRO", "AMPERE_80"}, "14.7B bf16 (29.5 GB): 32 GB would leave no headroom"},
		{"meta-llama/Llama-3.1-70B-Instruct", 159, []string{"BLACKWELL_180"}, "70B bf16 (141 GB) + cache exceeds an H200: one B200"},
		{"google-bert/bert-base-uncased", 1, []string{"AMPERE_16", "AMPERE_24", "ADA_24"}, "an encoder: the cheapest GPU"},
		{"openai/whisper-large-v3", 4, []string{"AMPERE_16", "AMPERE_24", "ADA_24"}, "1.5B speech model in fp16"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			ins, err := c.Inspect(context.Background(), tc.id, secret.New("hf_any"))
			if err != nil {
				t.Fatal(err)
			}
			if ins.Estimate.VRAMGB != tc.vram {
				t.Errorf("VRAM = %d GB, want %d", ins.Estimate.VRAMGB, tc.vram)
			}
			ch, err := gpu.Default().Choose(ins.Estimate.VRAMGB, "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.pools, ch.Pools); diff != "" {
				t.Errorf("pools for %s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
