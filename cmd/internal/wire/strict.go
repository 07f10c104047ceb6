package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/zkbank/zkbank/engine"
)

// DecodeStrict decodes one JSON object from body into v the way the API
// takes bodies: no unknown fields, nothing after the object, integers
// only where integers go; a failure is the problem the API answers with
// (bankctl says the same of a batch file's line).
func DecodeStrict(body []byte, v any) *Problem {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return NewProblem(CodeInvalidJSON, "data after the JSON object")
	}
	return nil
}

// amountFields are decoded as integers of minor units: a float, a string,
// a negative or a too large number is an invalid amount.
var amountFields = map[string]bool{"amount": true, "balance": true}

func jsonProblem(err error) *Problem {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if i := strings.LastIndex(field, "."); i >= 0 {
			field = field[i+1:]
		}
		if amountFields[field] {
			return NewProblem(engine.CodeInvalidAmount.String(),
				fmt.Sprintf("%s must be a whole number of minor units from 1 to %d, not a JSON %s", field, engine.MaxAmount, typeErr.Value))
		}
		return NewProblem(CodeInvalidField, fmt.Sprintf("field %q must be a %s, not a JSON %s", typeErr.Field, typeErr.Type, typeErr.Value))
	case errors.As(err, &syntaxErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return NewProblem(CodeInvalidJSON, "not a JSON object: "+err.Error())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return NewProblem(CodeUnknownField, strings.TrimPrefix(err.Error(), "json: ")+" is not accepted here")
	}
	return NewProblem(CodeInvalidJSON, err.Error())
}
