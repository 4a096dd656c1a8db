package event

import _ "embed"

// SchemaV1 is the canonical contract as a JSON Schema (draft 2020-12), for producers that validate before sending.
// The decoder in this package is the reference; TestJSONSchemaMatchesDecoder keeps the two in agreement.
//
//go:embed schema/v1.json
var SchemaV1 []byte
