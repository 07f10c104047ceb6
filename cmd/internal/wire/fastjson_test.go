package wire

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// strictDecode is how bankd decodes a body with encoding/json: no unknown
// fields, nothing after the object.
func strictDecode(body []byte) (Batch, error) {
	var b Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Batch{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return Batch{}, io.ErrUnexpectedEOF
	}
	return b, nil
}

var batchSeeds = []string{
	`{"commands":[{"op":"transfer","from":"1001","to":"1002","amount":5,"key":"k-1"}]}`,
	` { "commands" : [ { "op" : "create_account" , "account":"A-1","name":"Zoë","balance":0 } , {} ] } ` + "\n",
	`{"commands":[]}`,
	`{"commands":null}`,
	`{}`,
	`{"commands":[{"op":"deposit","account":"1","amount":1.0}]}`,
	`{"commands":[{"op":"deposit","account":"1","amount":-1}]}`,
	`{"commands":[{"op":"deposit","account":"1","amount":18446744073709551616}]}`,
	`{"commands":[{"op":"deposit","account":"1","amount":18446744073709551615}]}`,
	`{"commands":[{"op":"deposit","account":"1","amount":01}]}`,
	`{"commands":[{"op":"deposit","account":"1","amount":"5"}]}`,
	`{"commands":[{"OP":"deposit"}]}`,
	`{"commands":[{"op":"deposit","op":"withdraw"}]}`,
	`{"commands":[{"op":"deposit","account":"a\"b"}]}`,
	`{"commands":[{"op":"deposit","account":"\u0041"}]}`,
	"{\"commands\":[{\"name\":\"\xff\"}]}",
	`{"commands":[{"op":"deposit","extra":1}]}`,
	`{"commands":[{"op":"deposit"}]} {}`,
	`{"commands":[{"op":"deposit"}],"commands":[]}`,
	`{"commands":[{"op":"deposit"},]}`,
	`{"commands":[{"op":"deposit"}]`,
	"\ufeff{\"commands\":[]}",
}

// FuzzDecodeBatch: whatever DecodeBatch accepts, encoding/json accepts
// and decodes to the same batch.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range batchSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := DecodeBatch(body)
		if !ok {
			return
		}
		slow, err := strictDecode(body)
		if err != nil {
			t.Fatalf("DecodeBatch took %q, which encoding/json refuses: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: DecodeBatch gave %+v, encoding/json %+v", body, fast, slow)
		}
	})
}

var plainSeeds = []string{
	`{"from":"1001","to":"1002","amount":5}`,
	`{"amount":7}`,
	`{"account":"A-1","name":"Ada","balance":100}`,
	`{"name":"Zoë"}`,
	`{}`,
	`{"from":"1001","to":"1002","amount":5,"op":"transfer"}`,
	`{"amount":7,"amount":8}`,
	`{"amount":7,"to":"1002"}`,
	`{"name":"Ada","balance":1,"from":"x"}`,
	`{"Name":"Ada"}`,
	`{"amount":1e3}`,
	`{"amount":null}`,
	`[]`,
}

// FuzzDecodePlain: whatever DecodePlain accepts for each body type,
// encoding/json accepts and decodes to the same value.
func FuzzDecodePlain(f *testing.F) {
	for _, s := range plainSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newV := range []func() any{
			func() any { return &Transfer{} }, func() any { return &Amount{} },
			func() any { return &CreateAccount{} }, func() any { return &Rename{} },
		} {
			fast := newV()
			if !DecodePlain(body, fast) {
				continue
			}
			slow := newV()
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(slow); err != nil {
				t.Fatalf("DecodePlain took %q as %T, which encoding/json refuses: %v", body, fast, err)
			}
			if _, err := dec.Token(); err != io.EOF {
				t.Fatalf("DecodePlain took %q with data after it", body)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q: DecodePlain gave %+v, encoding/json %+v", body, fast, slow)
			}
		}
	})
}

// TestDecodePlainTakesThePlainShapes: each body type has a fast path.
func TestDecodePlainTakesThePlainShapes(t *testing.T) {
	var tr Transfer
	var am Amount
	var ca CreateAccount
	var rn Rename
	for i, v := range []any{&tr, &am, &ca, &rn} {
		if !DecodePlain([]byte(plainSeeds[i]), v) {
			t.Errorf("DecodePlain declined %q as %T", plainSeeds[i], v)
		}
	}
	if tr != (Transfer{From: "1001", To: "1002", Amount: 5}) || am.Amount != 7 || ca != (CreateAccount{Account: "A-1", Name: "Ada", Balance: 100}) || rn.Name != "Zoë" {
		t.Fatalf("decoded %+v %+v %+v %+v", tr, am, ca, rn)
	}
	if DecodePlain([]byte(plainSeeds[0]), &am) {
		t.Fatal("DecodePlain took a transfer's fields as an amount body")
	}
}

// TestDecodeBatchTakesThePlainShapes: the fast path is not a stub that
// always declines.
func TestDecodeBatchTakesThePlainShapes(t *testing.T) {
	for _, s := range batchSeeds[:3] {
		if _, ok := DecodeBatch([]byte(s)); !ok {
			t.Errorf("DecodeBatch declined %q", s)
		}
	}
	b, ok := DecodeBatch([]byte(batchSeeds[0]))
	want := Command{Op: "transfer", From: "1001", To: "1002", Amount: 5, Key: "k-1"}
	if !ok || len(b.Commands) != 1 || b.Commands[0] != want {
		t.Fatalf("decoded %+v", b)
	}
}

// TestAppendJSONIsEncodingJSON: batch results, transfer results and
// accounts, byte for byte what json.Encoder writes, for any strings.
func TestAppendJSONIsEncodingJSON(t *testing.T) {
	str := rapid.OneOf(rapid.StringMatching(`[A-Za-z0-9 _-]{0,12}`), rapid.String(), rapid.SampledFrom([]string{"<a&b>", "\u2028", "\xff", "\"\\\n"}))
	account := rapid.Custom(func(t *rapid.T) Account {
		return Account{Account: str.Draw(t, "account"), Name: str.Draw(t, "name"), Balance: rapid.Uint64().Draw(t, "balance"),
			CreatedIndex: rapid.Uint64().Draw(t, "created"), UpdatedIndex: rapid.Uint64().Draw(t, "updated"),
			Frozen: rapid.Bool().Draw(t, "frozen"), Held: rapid.Uint64().Draw(t, "held"), Available: rapid.Uint64().Draw(t, "available")}
	})
	result := rapid.Custom(func(t *rapid.T) Result {
		r := Result{Code: str.Draw(t, "code"), Replayed: rapid.Bool().Draw(t, "replayed"), Accounts: rapid.SliceOfN(account, 0, 2).Draw(t, "accounts")}
		if rapid.Bool().Draw(t, "hold") {
			r.Hold = &Hold{ID: rapid.Uint64().Draw(t, "id"), From: str.Draw(t, "from"), To: str.Draw(t, "to"), Status: str.Draw(t, "status"),
				Captured: rapid.Uint64().Draw(t, "captured"), ExpiresMs: rapid.Int64().Draw(t, "expires")}
		}
		return r
	})
	rapid.Check(t, func(t *rapid.T) {
		r := BatchResult{Index: rapid.Uint64().Draw(t, "index")}
		if !rapid.Bool().Draw(t, "nil") {
			r.Results = rapid.SliceOfN(result, 0, 4).Draw(t, "results")
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(r); err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("AppendJSON:\n%s\nencoding/json:\n%s", got, want.Bytes())
		}
		tr := TransferResult{From: account.Draw(t, "from"), To: account.Draw(t, "to")}
		for _, v := range []jsonAppender{tr, tr.From} {
			want.Reset()
			if err := json.NewEncoder(&want).Encode(v); err != nil {
				t.Fatal(err)
			}
			if got := v.AppendJSON(nil); !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("%T.AppendJSON:\n%s\nencoding/json:\n%s", v, got, want.Bytes())
			}
		}
	})
}

type jsonAppender interface{ AppendJSON([]byte) []byte }

func BenchmarkDecodeBatch(b *testing.B) {
	body := benchBatchBody(1000)
	b.SetBytes(int64(len(body)))
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, ok := DecodeBatch(body); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := strictDecode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchBatchBody(n int) []byte {
	var batch Batch
	for i := range n {
		batch.Commands = append(batch.Commands, Command{Op: "transfer", From: "ACC-000123", To: "ACC-000456", Amount: uint64(i + 1)})
	}
	body, _ := json.Marshal(batch)
	return body
}
