// Package gpu is the catalogue of RunPod serverless GPU pools and the choice
// of a pool for a model's memory need.
//
// The catalogue is embedded data (catalog.json: pools, their cards, VRAM and
// serverless prices); Refresh updates it from an account's live offers
// (Offer, which the RunPod side adapts its catalogue to), and Live keeps one
// refreshed catalogue per account.
//
// Choice rule (Choose):
//   - A requested tier (a card, a family alias such as "H100", or a pool id)
//     must hold the estimate: need <= the tier's VRAM (the card's own memory
//     when a card is named). The estimate already includes runtime overhead,
//     so an explicit request gets no extra headroom. No fallback pools are
//     added: the user asked for that hardware. A named card pins its pool by
//     excluding the pool's other cards.
//   - Automatically: the cheapest pool with need <= 90% of its VRAM (Headroom),
//     ties broken by smaller VRAM; then up to two further pools that fit, next
//     cheapest first, as fallbacks RunPod may place workers on when the first
//     has no capacity. When no pool fits with headroom, the cheapest pool that
//     fits at all is used.
//   - One GPU per worker. A model that fits no single GPU is an error
//     (*NoFitError): splitting a model over several GPUs depends on the
//     inference image and is not decided here.
package gpu

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Headroom is the share of a pool's VRAM an automatic choice may plan to use.
const Headroom = 0.9

// MaxFallbacks is how many pools an automatic choice adds after the primary.
const MaxFallbacks = 2

// Card is one GPU type of a pool.
type Card struct {
	ID     string `json:"id"`    // RunPod GPU type id, e.g. "NVIDIA A40"
	Short  string `json:"short"` // e.g. "A40"
	VRAMGB int    `json:"vram_gb"`
}

// Pool is a RunPod serverless GPU pool: what gpu.pools takes.
type Pool struct {
	ID     string `json:"id"`      // e.g. "AMPERE_48"
	VRAMGB int    `json:"vram_gb"` // memory of the pool's smallest card
	Cards  []Card `json:"cards"`
	// PricePerHour is the serverless list price per GPU per hour, USD.
	PricePerHour float64 `json:"price_per_hour"`
	// Aliases are tier names that mean the whole pool ("H100").
	Aliases []string `json:"aliases,omitempty"`
}

// Display names the pool for a user: "AMPERE_48 (48 GB: A40, A6000)".
func (p Pool) Display() string {
	shorts := make([]string, 0, len(p.Cards))
	for _, c := range p.Cards {
		shorts = append(shorts, c.Short)
	}
	if len(shorts) == 0 {
		return fmt.Sprintf("%s (%d GB)", p.ID, p.VRAMGB)
	}
	return fmt.Sprintf("%s (%d GB: %s)", p.ID, p.VRAMGB, strings.Join(shorts, ", "))
}

func (p Pool) clone() Pool {
	p.Cards = slices.Clone(p.Cards)
	p.Aliases = slices.Clone(p.Aliases)
	return p
}

// Catalog is an immutable set of pools. Its methods are safe for concurrent
// use.
type Catalog struct {
	pools []Pool // sorted: VRAM, then price, then id
	index map[string]tierRef
	// readAt is when the catalogue was read from RunPod (At); zero for
	// the embedded one.
	readAt time.Time
}

// At returns the catalogue marked as read from RunPod at t.
func (c *Catalog) At(t time.Time) *Catalog {
	nc := *c
	nc.readAt = t.UTC()
	return &nc
}

// ReadAt is when the catalogue was read from RunPod; zero for the
// embedded catalogue (its prices are RunPod's list prices of November 2026).
func (c *Catalog) ReadAt() time.Time { return c.readAt }

// Prices returns the price per hour of the first of pools, and the highest
// price among the others (0 when there are none); pools not in the
// catalogue count 0.
func (c *Catalog) Prices(pools []string) (first, fallbackMax float64) {
	for i, id := range pools {
		p, ok := c.Pool(id)
		if !ok {
			continue
		}
		if i == 0 {
			first = p.PricePerHour
		} else {
			fallbackMax = max(fallbackMax, p.PricePerHour)
		}
	}
	return first, fallbackMax
}

type tierRef struct {
	pool int
	card int // -1: the whole pool
}

//go:embed catalog.json
var catalogJSON []byte

// Default returns the embedded catalogue (parsed once; a Catalog is
// immutable, so every caller shares it).
func Default() *Catalog { return defaultCatalog() }

var defaultCatalog = sync.OnceValue(func() *Catalog {
	var doc struct {
		Pools []Pool `json:"pools"`
	}
	if err := json.Unmarshal(catalogJSON, &doc); err != nil {
		panic(fmt.Sprintf("gpu: embedded catalog.json is invalid: %v", err))
	}
	c, err := New(doc.Pools)
	if err != nil {
		panic(fmt.Sprintf("gpu: embedded catalog.json is invalid: %v", err))
	}
	return c
})

// New builds a catalogue from pools. Every pool needs an id and a positive
// VRAM, and no two tier names (pool ids, aliases, card ids and short names,
// compared case-insensitively without spaces, dashes or underscores) may
// point at different things.
func New(pools []Pool) (*Catalog, error) { return build(pools, true) }

// build makes a catalogue; when not strict, a name already taken keeps its
// first meaning instead of failing.
func build(pools []Pool, strict bool) (*Catalog, error) {
	c := &Catalog{index: make(map[string]tierRef)}
	for _, p := range pools {
		if p.ID == "" || p.VRAMGB <= 0 {
			return nil, fmt.Errorf("gpu: pool %q needs an id and a positive VRAM", p.ID)
		}
		c.pools = append(c.pools, p.clone())
	}
	slices.SortStableFunc(c.pools, func(a, b Pool) int {
		if a.VRAMGB != b.VRAMGB {
			return a.VRAMGB - b.VRAMGB
		}
		if a.PricePerHour != b.PricePerHour {
			if a.PricePerHour < b.PricePerHour {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	add := func(name string, ref tierRef) error {
		k := normalize(name)
		if k == "" {
			return nil
		}
		if old, ok := c.index[k]; ok && old != ref {
			if strict {
				return fmt.Errorf("gpu: tier name %q is ambiguous", name)
			}
			return nil
		}
		c.index[k] = ref
		return nil
	}
	for i, p := range c.pools {
		for _, name := range append([]string{p.ID}, p.Aliases...) {
			if err := add(name, tierRef{pool: i, card: -1}); err != nil {
				return nil, err
			}
		}
		for j, card := range p.Cards {
			if card.ID == "" {
				return nil, fmt.Errorf("gpu: a card of pool %s has no id", p.ID)
			}
			for _, name := range []string{card.ID, card.Short} {
				if err := add(name, tierRef{pool: i, card: j}); err != nil {
					return nil, err
				}
			}
		}
	}
	return c, nil
}

// normalize folds a tier name: lower case, no spaces, dashes or underscores,
// and no "nvidia", "geforce" or "rtx" prefix ("NVIDIA GeForce RTX 4090",
// "RTX 4090" and "4090" are one name).
func normalize(s string) string {
	s = strings.ToLower(s)
	s = strings.NewReplacer(" ", "", "-", "", "_", "", "\t", "").Replace(s)
	for _, p := range []string{"nvidia", "geforce", "rtx"} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// Pools returns the pools by ascending VRAM, then price.
func (c *Catalog) Pools() []Pool {
	out := make([]Pool, len(c.pools))
	for i, p := range c.pools {
		out[i] = p.clone()
	}
	return out
}

// Pool returns the pool with this id.
func (c *Catalog) Pool(id string) (Pool, bool) {
	for _, p := range c.pools {
		if p.ID == id {
			return p.clone(), true
		}
	}
	return Pool{}, false
}

// UnknownTierError is a gpu_tier that names no card, family or pool.
type UnknownTierError struct {
	Tier  string
	Valid []string
}

func (e *UnknownTierError) Error() string {
	return fmt.Sprintf("unknown gpu_tier %q; valid tiers: %s", e.Tier, strings.Join(e.Valid, ", "))
}

// TooSmallError is a requested tier with less memory than the model needs.
type TooSmallError struct {
	Tier   string
	VRAMGB int
	NeedGB int
}

func (e *TooSmallError) Error() string {
	return fmt.Sprintf("gpu_tier %s has %d GB of VRAM; the model needs about %d GB", e.Tier, e.VRAMGB, e.NeedGB)
}

// NoFitError is a need larger than every single GPU of the catalogue.
type NoFitError struct {
	NeedGB int
	MaxGB  int
}

func (e *NoFitError) Error() string {
	return fmt.Sprintf("the model needs about %d GB of VRAM; the largest single GPU available has %d GB", e.NeedGB, e.MaxGB)
}

// ValidTiers lists the names ParseTier accepts, in catalogue order: card
// short names, family aliases, then pool ids.
func (c *Catalog) ValidTiers() []string {
	var cards, pools []string
	for _, p := range c.pools {
		for _, card := range p.Cards {
			cards = append(cards, card.Short)
		}
		cards = append(cards, p.Aliases...)
		pools = append(pools, p.ID)
	}
	return append(cards, pools...)
}

// ParseTier accepts a card short name ("A40", "h100 sxm", case-insensitive),
// a card id ("NVIDIA A40"), a family alias ("H100") or a pool id
// ("AMPERE_48"), and returns the pool and, when a card was named, that card.
func (c *Catalog) ParseTier(tier string) (Pool, *Card, error) {
	ref, ok := c.index[normalize(strings.TrimSpace(tier))]
	if !ok || strings.TrimSpace(tier) == "" {
		return Pool{}, nil, &UnknownTierError{Tier: tier, Valid: c.ValidTiers()}
	}
	p := c.pools[ref.pool].clone()
	if ref.card < 0 {
		return p, nil, nil
	}
	card := p.Cards[ref.card]
	return p, &card, nil
}

// Choice is where a deployment's workers may run.
type Choice struct {
	// Pools for gpu.pools: the primary first, then fallbacks.
	Pools   []string
	Primary Pool
	// Card names the choice for a user ("Selected GPU: NVIDIA A40"): the card
	// id when a card was requested, else the primary pool's Display.
	Card string
	// ExcludedTypes, for gpu.excludedTypes: when a card was requested, the
	// other cards of its pool.
	ExcludedTypes []string
	// VRAMGB is the memory the choice guarantees.
	VRAMGB int
	// GPUCount is GPUs per worker (always 1, see the package doc).
	GPUCount int
}

// Choose picks pools for a model that needs about needGB of VRAM, honouring a
// requested tier when not empty. The rule is in the package doc.
func (c *Catalog) Choose(needGB int, tier string) (Choice, error) {
	if needGB <= 0 {
		return Choice{}, fmt.Errorf("gpu: the VRAM need must be positive, got %d GB", needGB)
	}
	if strings.TrimSpace(tier) != "" {
		return c.chooseTier(needGB, strings.TrimSpace(tier))
	}
	if len(c.pools) == 0 {
		return Choice{}, &NoFitError{NeedGB: needGB}
	}
	byPrice := slices.Clone(c.pools)
	slices.SortStableFunc(byPrice, func(a, b Pool) int {
		switch {
		case a.PricePerHour < b.PricePerHour:
			return -1
		case a.PricePerHour > b.PricePerHour:
			return 1
		}
		return a.VRAMGB - b.VRAMGB
	})
	fits := func(p Pool) bool { return float64(needGB) <= Headroom*float64(p.VRAMGB) }
	var picked []Pool
	for _, p := range byPrice {
		if fits(p) {
			picked = append(picked, p)
		}
	}
	if len(picked) == 0 {
		for _, p := range byPrice {
			if needGB <= p.VRAMGB {
				picked = append(picked, p)
				break
			}
		}
	}
	if len(picked) == 0 {
		return Choice{}, &NoFitError{NeedGB: needGB, MaxGB: c.pools[len(c.pools)-1].VRAMGB}
	}
	picked = picked[:min(len(picked), 1+MaxFallbacks)]
	ch := Choice{Primary: picked[0].clone(), Card: picked[0].Display(), VRAMGB: picked[0].VRAMGB, GPUCount: 1}
	for _, p := range picked {
		ch.Pools = append(ch.Pools, p.ID)
	}
	return ch, nil
}

func (c *Catalog) chooseTier(needGB int, tier string) (Choice, error) {
	pool, card, err := c.ParseTier(tier)
	if err != nil {
		return Choice{}, err
	}
	vram := pool.VRAMGB
	if card != nil {
		vram = card.VRAMGB
	}
	if needGB > vram {
		return Choice{}, &TooSmallError{Tier: tier, VRAMGB: vram, NeedGB: needGB}
	}
	ch := Choice{Pools: []string{pool.ID}, Primary: pool, Card: pool.Display(), VRAMGB: vram, GPUCount: 1}
	if card != nil {
		ch.Card = card.ID
		for _, other := range pool.Cards {
			if other.ID != card.ID {
				ch.ExcludedTypes = append(ch.ExcludedTypes, other.ID)
			}
		}
	}
	return ch, nil
}

// Offer is one GPU type an account can rent, as a live catalogue lists it
// (RunPod's GET /v2/catalog/gpus, adapted by the caller).
type Offer struct {
	ID       string // GPU type id, e.g. "NVIDIA A40"
	Name     string // e.g. "A40"
	Pool     string // serverless pool id, e.g. "AMPERE_48"; empty if in none
	MemoryGB int
	// PricePerHour is the serverless price per GPU per hour (USD); 0 when
	// the type is not available serverless to the account.
	PricePerHour float64
}

// Refresh returns a new catalogue updated from an account's live offers:
//   - a known pool that appears in types takes its serverless price (the
//     lowest one given for its cards) and its card list from types; cards
//     keep the short names the catalogue knew;
//   - a known pool whose types all lack a serverless price is dropped (not
//     available to this account);
//   - a known pool absent from types is kept as it was;
//   - an unknown pool with a serverless price is added, its VRAM being its
//     smallest card's memory.
//
// Types in no pool are ignored; a card name that would mean two things keeps
// its earlier meaning.
func (c *Catalog) Refresh(types []Offer) *Catalog {
	byPool := make(map[string][]Offer)
	var order []string
	for _, t := range types {
		if t.Pool == "" || t.ID == "" {
			continue
		}
		if _, ok := byPool[t.Pool]; !ok {
			order = append(order, t.Pool)
		}
		byPool[t.Pool] = append(byPool[t.Pool], t)
	}
	shortOf := make(map[string]string)
	for _, p := range c.pools {
		for _, card := range p.Cards {
			shortOf[card.ID] = card.Short
		}
	}
	refreshPool := func(p Pool, ts []Offer) (Pool, bool) {
		price := 0.0
		var cards []Card
		for _, t := range ts {
			if t.PricePerHour <= 0 {
				continue
			}
			if price == 0 || t.PricePerHour < price {
				price = t.PricePerHour
			}
			short := shortOf[t.ID]
			if short == "" {
				short = t.Name
			}
			cards = append(cards, Card{ID: t.ID, Short: short, VRAMGB: t.MemoryGB})
		}
		if len(cards) == 0 {
			return Pool{}, false
		}
		p.PricePerHour = price
		p.Cards = cards
		if p.VRAMGB == 0 {
			p.VRAMGB = cards[0].VRAMGB
			for _, card := range cards {
				p.VRAMGB = min(p.VRAMGB, card.VRAMGB)
			}
		}
		return p, true
	}
	var pools []Pool
	known := make(map[string]bool)
	for _, p := range c.pools {
		known[p.ID] = true
		ts, ok := byPool[p.ID]
		if !ok {
			pools = append(pools, p.clone())
			continue
		}
		if np, ok := refreshPool(p.clone(), ts); ok {
			pools = append(pools, np)
		}
	}
	for _, id := range order {
		if known[id] {
			continue
		}
		if np, ok := refreshPool(Pool{ID: id}, byPool[id]); ok {
			pools = append(pools, np)
		}
	}
	nc, err := build(pools, false)
	if err != nil {
		// Only a pool without id or VRAM fails, and none is built here.
		return c
	}
	return nc
}
