package gpu_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/gpu"
)

func TestDefaultHasTheServerlessPools(t *testing.T) {
	c := gpu.Default()
	var got []string
	for _, p := range c.Pools() {
		got = append(got, p.ID)
		if p.PricePerHour <= 0 || len(p.Cards) == 0 {
			t.Errorf("pool %s: price %v, %d cards", p.ID, p.PricePerHour, len(p.Cards))
		}
		for _, card := range p.Cards {
			if card.VRAMGB < p.VRAMGB {
				t.Errorf("pool %s: card %s has %d GB, below the pool's %d", p.ID, card.ID, card.VRAMGB, p.VRAMGB)
			}
		}
	}
	want := []string{"AMPERE_16", "AMPERE_24", "ADA_24", "ADA_32_PRO", "AMPERE_48", "ADA_48_PRO",
		"AMPERE_80", "ADA_80_PRO", "BLACKWELL_96", "HOPPER_141", "BLACKWELL_180"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pools by VRAM then price (-want +got):\n%s", diff)
	}
}

func TestPoolsReturnsCopies(t *testing.T) {
	c := gpu.Default()
	ps := c.Pools()
	ps[0].Cards[0].ID = "changed"
	if c.Pools()[0].Cards[0].ID == "changed" {
		t.Fatal("Pools exposes the catalogue's own slices")
	}
}

func TestParseTier(t *testing.T) {
	c := gpu.Default()
	tests := []struct {
		tier     string
		wantPool string
		wantCard string // "" for the whole pool
	}{
		{"A40", "AMPERE_48", "NVIDIA A40"},
		{"a40", "AMPERE_48", "NVIDIA A40"},
		{"  NVIDIA A40 ", "AMPERE_48", "NVIDIA A40"},
		{"A6000", "AMPERE_48", "NVIDIA RTX A6000"},
		{"RTX A6000", "AMPERE_48", "NVIDIA RTX A6000"},
		{"AMPERE_48", "AMPERE_48", ""},
		{"ampere-48", "AMPERE_48", ""},
		{"L40", "ADA_48_PRO", "NVIDIA L40"},
		{"l40s", "ADA_48_PRO", "NVIDIA L40S"},
		{"RTX 4090", "ADA_24", "NVIDIA GeForce RTX 4090"},
		{"4090", "ADA_24", "NVIDIA GeForce RTX 4090"},
		{"NVIDIA GeForce RTX 4090", "ADA_24", "NVIDIA GeForce RTX 4090"},
		{"H100", "ADA_80_PRO", ""},
		{"h100 sxm", "ADA_80_PRO", "NVIDIA H100 80GB HBM3"},
		{"NVIDIA H100 80GB HBM3", "ADA_80_PRO", "NVIDIA H100 80GB HBM3"},
		{"A100", "AMPERE_80", ""},
		{"H200", "HOPPER_141", "NVIDIA H200"},
		{"B200", "BLACKWELL_180", "NVIDIA B200"},
	}
	for _, tt := range tests {
		t.Run(tt.tier, func(t *testing.T) {
			pool, card, err := c.ParseTier(tt.tier)
			if err != nil {
				t.Fatalf("ParseTier(%q): %v", tt.tier, err)
			}
			gotCard := ""
			if card != nil {
				gotCard = card.ID
			}
			if pool.ID != tt.wantPool || gotCard != tt.wantCard {
				t.Errorf("ParseTier(%q) = %s, %q; want %s, %q", tt.tier, pool.ID, gotCard, tt.wantPool, tt.wantCard)
			}
		})
	}
}

func TestParseTierRejects(t *testing.T) {
	c := gpu.Default()
	for _, tier := range []string{"", "  ", "A41", "TPU", "NVIDIA"} {
		t.Run(tier, func(t *testing.T) {
			_, _, err := c.ParseTier(tier)
			var ute *gpu.UnknownTierError
			if !errors.As(err, &ute) {
				t.Fatalf("ParseTier(%q) error = %v, want *UnknownTierError", tier, err)
			}
			for _, valid := range []string{"A40", "H100", "AMPERE_48", "L40S"} {
				if !strings.Contains(err.Error(), valid) {
					t.Errorf("message %q does not list %s", err, valid)
				}
			}
		})
	}
}

func TestNewRejectsAmbiguousNames(t *testing.T) {
	_, err := gpu.New([]gpu.Pool{
		{ID: "P1", VRAMGB: 16, Cards: []gpu.Card{{ID: "NVIDIA X1", Short: "X1", VRAMGB: 16}}},
		{ID: "P2", VRAMGB: 24, Cards: []gpu.Card{{ID: "NVIDIA X2", Short: "x-1", VRAMGB: 24}}},
	})
	if err == nil {
		t.Fatal("New accepted two cards both called X1")
	}
	if _, err := gpu.New([]gpu.Pool{{ID: "P", VRAMGB: 0}}); err == nil {
		t.Fatal("New accepted a pool without VRAM")
	}
}

func TestChoose(t *testing.T) {
	c := gpu.Default()
	tests := []struct {
		name     string
		need     int
		tier     string
		want     gpu.Choice
		wantPool string
	}{
		{
			name: "8 GB automatic: the 16 GB pool, then the two next cheapest that fit",
			need: 8,
			want: gpu.Choice{Pools: []string{"AMPERE_16", "AMPERE_24", "ADA_24"},
				Card: "AMPERE_16 (16 GB: A4000, A4500, RTX 4000 Ada, RTX 2000 Ada)", VRAMGB: 16, GPUCount: 1},
		},
		{
			name: "15 GB is over 90% of 16 GB: a 24 GB pool",
			need: 15,
			want: gpu.Choice{Pools: []string{"AMPERE_24", "ADA_24", "AMPERE_48"},
				Card: "AMPERE_24 (24 GB: A5000, L4, RTX 3090)", VRAMGB: 24, GPUCount: 1},
		},
		{
			name: "22 GB: the cheaper 48 GB pool beats the 32 GB one",
			need: 22,
			want: gpu.Choice{Pools: []string{"AMPERE_48", "ADA_32_PRO", "ADA_48_PRO"},
				Card: "AMPERE_48 (48 GB: A40, A6000)", VRAMGB: 48, GPUCount: 1},
		},
		{
			name: "60 GB automatic: an 80 GB pool",
			need: 60,
			want: gpu.Choice{Pools: []string{"AMPERE_80", "BLACKWELL_96", "ADA_80_PRO"},
				Card: "AMPERE_80 (80 GB: A100 PCIe, A100 SXM)", VRAMGB: 80, GPUCount: 1},
		},
		{
			name: "170 GB fits only without headroom",
			need: 170,
			want: gpu.Choice{Pools: []string{"BLACKWELL_180"},
				Card: "BLACKWELL_180 (180 GB: B200)", VRAMGB: 180, GPUCount: 1},
		},
		{
			name: "A40 requested: its pool, the other card excluded",
			need: 8, tier: "A40",
			want: gpu.Choice{Pools: []string{"AMPERE_48"}, Card: "NVIDIA A40",
				ExcludedTypes: []string{"NVIDIA RTX A6000"}, VRAMGB: 48, GPUCount: 1},
		},
		{
			name: "a requested tier may be filled to the brim",
			need: 48, tier: "nvidia a40",
			want: gpu.Choice{Pools: []string{"AMPERE_48"}, Card: "NVIDIA A40",
				ExcludedTypes: []string{"NVIDIA RTX A6000"}, VRAMGB: 48, GPUCount: 1},
		},
		{
			name: "H100 family: the whole pool",
			need: 60, tier: "H100",
			want: gpu.Choice{Pools: []string{"ADA_80_PRO"},
				Card: "ADA_80_PRO (80 GB: H100 PCIe, H100 SXM, H100 NVL)", VRAMGB: 80, GPUCount: 1},
		},
		{
			name: "H100 NVL holds more than its pool's 80 GB",
			need: 90, tier: "H100 NVL",
			want: gpu.Choice{Pools: []string{"ADA_80_PRO"}, Card: "NVIDIA H100 NVL",
				ExcludedTypes: []string{"NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3"}, VRAMGB: 94, GPUCount: 1},
		},
		{
			name: "a pool id",
			need: 20, tier: "ADA_24",
			want: gpu.Choice{Pools: []string{"ADA_24"}, Card: "ADA_24 (24 GB: RTX 4090)", VRAMGB: 24, GPUCount: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Choose(tt.need, tt.tier)
			if err != nil {
				t.Fatalf("Choose(%d, %q): %v", tt.need, tt.tier, err)
			}
			if got.Primary.ID != got.Pools[0] {
				t.Errorf("Primary %s is not the first pool %s", got.Primary.ID, got.Pools[0])
			}
			got.Primary = gpu.Pool{}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Choose(%d, %q) (-want +got):\n%s", tt.need, tt.tier, diff)
			}
		})
	}
}

func TestChooseErrors(t *testing.T) {
	c := gpu.Default()
	tests := []struct {
		name    string
		need    int
		tier    string
		wantMsg string
		check   func(error) bool
	}{
		{
			name: "requested tier too small", need: 60, tier: "A40",
			wantMsg: "gpu_tier A40 has 48 GB of VRAM; the model needs about 60 GB",
			check:   func(err error) bool { var e *gpu.TooSmallError; return errors.As(err, &e) && e.VRAMGB == 48 },
		},
		{
			name: "bigger than any single GPU", need: 200,
			wantMsg: "the model needs about 200 GB of VRAM; the largest single GPU available has 180 GB",
			check:   func(err error) bool { var e *gpu.NoFitError; return errors.As(err, &e) && e.MaxGB == 180 },
		},
		{
			name: "unknown tier", need: 8, tier: "V100",
			wantMsg: `unknown gpu_tier "V100"; valid tiers: A4000,`,
			check:   func(err error) bool { var e *gpu.UnknownTierError; return errors.As(err, &e) },
		},
		{
			name: "no need", need: 0,
			wantMsg: "must be positive",
			check:   func(err error) bool { return err != nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Choose(tt.need, tt.tier)
			if err == nil || !tt.check(err) {
				t.Fatalf("Choose(%d, %q) error = %v", tt.need, tt.tier, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	c := gpu.Default()
	types := []gpu.Offer{
		{ID: "NVIDIA A40", Name: "A40", Pool: "AMPERE_48", MemoryGB: 48, PricePerHour: 1.5},
		{ID: "NVIDIA RTX A6000", Name: "RTX A6000", Pool: "AMPERE_48", MemoryGB: 48, PricePerHour: 1.5},
		{ID: "NVIDIA GeForce RTX 4090", Name: "RTX 4090", Pool: "ADA_24", MemoryGB: 24}, // no serverless price
		{ID: "NVIDIA X64", Name: "X64", Pool: "NEW_64", MemoryGB: 64, PricePerHour: 2},
		{ID: "NVIDIA GeForce RTX 3070", Name: "RTX 3070", MemoryGB: 8}, // in no pool
	}
	r := c.Refresh(types)

	a48, ok := r.Pool("AMPERE_48")
	if !ok {
		t.Fatal("AMPERE_48 missing after refresh")
	}
	wantA48 := gpu.Pool{ID: "AMPERE_48", VRAMGB: 48, PricePerHour: 1.5, Cards: []gpu.Card{
		{ID: "NVIDIA A40", Short: "A40", VRAMGB: 48},
		{ID: "NVIDIA RTX A6000", Short: "A6000", VRAMGB: 48},
	}}
	if diff := cmp.Diff(wantA48, a48); diff != "" {
		t.Errorf("AMPERE_48 (-want +got):\n%s", diff)
	}
	if _, ok := r.Pool("ADA_24"); ok {
		t.Error("ADA_24 has no serverless price for this account and should be dropped")
	}
	if p, ok := r.Pool("NEW_64"); !ok || p.VRAMGB != 64 || p.PricePerHour != 2 {
		t.Errorf("NEW_64 = %+v, %v; want 64 GB at 2/h", p, ok)
	}
	if p, ok := r.Pool("HOPPER_141"); !ok || p.PricePerHour != 5.58 {
		t.Errorf("HOPPER_141, absent from the list, should be kept: %+v, %v", p, ok)
	}
	if _, _, err := r.ParseTier("x64"); err != nil {
		t.Errorf("the new card is not a tier: %v", err)
	}
	// c itself is untouched.
	if p, _ := c.Pool("AMPERE_48"); p.PricePerHour != 1.22 {
		t.Errorf("Refresh changed the original catalogue: %v", p.PricePerHour)
	}
	// The choice follows the new prices: 48 GB now costs 1.5 and the new
	// 64 GB pool 2, so 50 GB goes to NEW_64 before the 80 GB pools.
	ch, err := r.Choose(50, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Pools, []string{"NEW_64", "AMPERE_80", "BLACKWELL_96"}) {
		t.Errorf("Choose(50) after refresh = %v", ch.Pools)
	}
}

func TestRefreshFromNothingKeepsTheCatalogue(t *testing.T) {
	c := gpu.Default()
	if diff := cmp.Diff(c.Pools(), c.Refresh(nil).Pools()); diff != "" {
		t.Errorf("Refresh(nil) changed the pools:\n%s", diff)
	}
}
