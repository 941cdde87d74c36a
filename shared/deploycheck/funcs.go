package deploycheck

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

var base64encodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
	},
})

// templatefileFunc renders a template file as Terraform's templatefile
// does (the path as given, relative to the working directory, which is
// why the configuration spells it with path.module).
func (m *Module) templatefileFunc() function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType, AllowUnknown: true},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := args[0].AsString()
			src, err := os.ReadFile(path)
			if err != nil {
				return cty.NilVal, err
			}
			expr, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("%s", diags.Error())
			}
			vars := map[string]cty.Value{}
			if v := args[1]; v.IsKnown() && !v.IsNull() && (v.Type().IsObjectType() || v.Type().IsMapType()) {
				for it := v.ElementIterator(); it.Next(); {
					k, e := it.Element()
					vars[k.AsString()] = e
				}
			}
			out, diags := expr.Value(&hcl.EvalContext{Variables: vars})
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("%s", diags.Error())
			}
			return out, nil
		},
	})
}

var sha256Func = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		sum := sha256.Sum256([]byte(args[0].AsString()))
		return cty.StringVal(hex.EncodeToString(sum[:])), nil
	},
})

var filesha256Func = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "path", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		b, err := os.ReadFile(args[0].AsString())
		if err != nil {
			return cty.NilVal, err
		}
		sum := sha256.Sum256(b)
		return cty.StringVal(hex.EncodeToString(sum[:])), nil
	},
})

// filesetFunc is Terraform's fileset for the pattern "**" (every file
// under path, relative to it; none when path does not exist); other
// patterns give an unknown set.
var filesetFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "pattern", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Set(cty.String)),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		root, pattern := args[0].AsString(), args[1].AsString()
		if pattern != "**" {
			return cty.UnknownVal(cty.Set(cty.String)), nil
		}
		var files []cty.Value
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				rel, _ := filepath.Rel(root, p)
				files = append(files, cty.StringVal(filepath.ToSlash(rel)))
			}
			return nil
		})
		switch {
		case os.IsNotExist(err):
			return cty.SetValEmpty(cty.String), nil
		case err != nil:
			return cty.NilVal, err
		case len(files) == 0:
			return cty.SetValEmpty(cty.String), nil
		}
		return cty.SetVal(files), nil
	},
})

var abspathFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "path", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		p, err := filepath.Abs(args[0].AsString())
		return cty.StringVal(filepath.ToSlash(p)), err
	},
})

var startswithFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "prefix", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(strings.HasPrefix(args[0].AsString(), args[1].AsString())), nil
	},
})
