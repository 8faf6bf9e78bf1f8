// JSON Schema -> GBNF (for grammar.h), so a reply can be constrained to instances of a schema.
//
// Supported: type (object, array, string, number, integer, boolean, null, or an array of these);
// properties / required (required properties first, in `properties` order, then the optional ones, each
// optional, in order); additionalProperties (absent with `properties` = no others; false; true; a schema;
// extra keys never repeat a declared one); enum / const; items, prefixItems (tuples: exactly the prefix
// unless `items` allows more), minItems / maxItems; anyOf / oneOf (oneOf is matched as anyOf: keep the
// branches disjoint); allOf of object schemas (merged); $ref to any "#/..." pointer ($defs, definitions,
// recursion allowed); minLength / maxLength; format date, time, date-time, uuid, email (basic shapes;
// other formats are annotations: plain string); minimum / maximum / exclusiveMinimum / exclusiveMaximum
// for integers. Annotations (title, description, default, examples, $schema, $id, $comment, ...) are
// ignored. Anything else (pattern, number bounds, multipleOf, patternProperties, if/then, not, ...)
// fails with SLLM_ERR_UNSUPPORTED naming the keyword's JSON pointer, e.g. "#/properties/zip/pattern".
//
// Whitespace: between tokens the grammar allows nothing, one space, or a newline plus up to 20 spaces or
// tabs (bounded, so a model cannot ramble in whitespace). Integers have at most 16 digits and exponents
// at most 2 digits.
#ifndef SLLM_TEXT_JSON_SCHEMA_H
#define SLLM_TEXT_JSON_SCHEMA_H
#include "text/grammar.h"
#include <jansson.h>

// GBNF text with start rule "root" (malloc'd, caller frees).
int json_schema_to_gbnf(const json_t *schema, char **out);
// The same, parsed.
int json_schema_to_grammar(const json_t *schema, grammar **out);
#endif
