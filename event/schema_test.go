package event

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestJSONSchemaMatchesDecoder checks that schema/v1.json lists exactly the types, data fields, required fields and
// JSON types that Decode enforces.
func TestJSONSchemaMatchesDecoder(t *testing.T) {
	var doc struct {
		Required   []string `json:"required"`
		Properties struct {
			Type struct {
				Enum []string `json:"enum"`
			} `json:"type"`
		} `json:"properties"`
		AllOf []struct {
			If struct {
				Properties struct {
					Type struct {
						Const string `json:"const"`
					} `json:"type"`
				} `json:"properties"`
			} `json:"if"`
			Then struct {
				Properties struct {
					Data struct {
						Properties map[string]struct {
							Type any `json:"type"`
						} `json:"properties"`
						Required []string `json:"required"`
					} `json:"data"`
				} `json:"properties"`
			} `json:"then"`
		} `json:"allOf"`
	}
	if err := json.Unmarshal(SchemaV1, &doc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(doc.Properties.Type.Enum, Types) {
		t.Errorf("schema types %v, decoder types %v", doc.Properties.Type.Enum, Types)
	}
	for _, a := range []string{"specversion", "id", "source", "type", "time", "data"} {
		if !slices.Contains(doc.Required, a) {
			t.Errorf("schema does not require %s", a)
		}
	}
	jsonType := map[fieldKind]string{kString: "string", kNullableString: "[string null]", kNumber: "number", kStringArray: "array"}
	seen := map[string]bool{}
	for _, b := range doc.AllOf {
		typ := b.If.Properties.Type.Const
		seen[typ] = true
		fields, ok := schema[typ]
		if !ok {
			t.Errorf("schema has a branch for unknown type %q", typ)
			continue
		}
		data := b.Then.Properties.Data
		if len(data.Properties) != len(fields) {
			t.Errorf("%s: schema has %d data fields, decoder %d", typ, len(data.Properties), len(fields))
		}
		for _, f := range fields {
			p, ok := data.Properties[f.name]
			if !ok {
				t.Errorf("%s: schema lacks data.%s", typ, f.name)
				continue
			}
			got := "string" // enums (outcome) are strings
			if p.Type != nil {
				got = fmtType(p.Type)
			}
			if got != jsonType[f.kind] {
				t.Errorf("%s: data.%s is %s in the schema, %s in the decoder", typ, f.name, got, jsonType[f.kind])
			}
			if f.required != slices.Contains(data.Required, f.name) {
				t.Errorf("%s: data.%s required=%v in the decoder but not in the schema", typ, f.name, f.required)
			}
		}
	}
	for _, typ := range Types {
		if !seen[typ] {
			t.Errorf("schema has no branch for %s", typ)
		}
	}
}

func fmtType(v any) string {
	if l, ok := v.([]any); ok {
		s := "["
		for i, x := range l {
			if i > 0 {
				s += " "
			}
			s += x.(string)
		}
		return s + "]"
	}
	return v.(string)
}
