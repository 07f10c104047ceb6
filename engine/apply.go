package engine

// execute applies one command whose key is new. Every check happens before
// any change, so a rejected command has no effect.
func (e *Engine) execute(index uint64, nowMs int64, c *Command) Result {
	switch c.Op {
	case OpCreateAccount:
		return e.create(index, c)
	case OpDeposit:
		return e.deposit(index, c)
	case OpWithdraw:
		return e.withdraw(index, c)
	case OpTransfer:
		return e.transfer(index, c)
	case OpDeleteAccount:
		return e.remove(c)
	case OpRename:
		return e.rename(index, c)
	case OpRevokeCertificate:
		return e.revoke(index, c)
	case OpCreateToken:
		return e.createToken(index, nowMs, c)
	case OpRevokeToken:
		return e.revokeToken(index, c)
	case OpFreezeAccount, OpUnfreezeAccount:
		return e.freeze(index, c)
	case OpCreateHold:
		return e.createHold(index, nowMs, c)
	case OpCaptureHold:
		return e.captureHold(index, c)
	case OpVoidHold:
		return e.voidHold(index, c)
	case OpSetApprovalLimit:
		return e.setApprovalLimit(c)
	case OpApprove, OpReject:
		return e.decide(index, nowMs, c)
	}
	return rejected(CodeInvalid)
}

// freeze sets or clears an account's frozen mark. Freezing a frozen
// account (or unfreezing one that is not) succeeds and changes nothing.
func (e *Engine) freeze(index uint64, c *Command) Result {
	if code := checkNumber(c.Account); code != CodeOK {
		return rejected(code)
	}
	a, ok := e.accounts.change(c.Account)
	if !ok {
		return rejected(CodeAccountNotFound)
	}
	if frozen := c.Op == OpFreezeAccount; a.frozen != frozen {
		a.frozen = frozen
		a.updated = index
	}
	return succeeded(a)
}

func (e *Engine) create(index uint64, c *Command) Result {
	if code := checkCreate(c); code != CodeOK {
		return rejected(code)
	}
	if e.accounts.full() {
		return rejected(CodeLimitExceeded)
	}
	if e.totals.Balance+c.Amount > MaxTotalBalance {
		return rejected(CodeLimitExceeded)
	}
	number := c.Account
	if number == "" {
		var ok bool
		if number, ok = e.assignNumber(); !ok {
			return rejected(CodeLimitExceeded)
		}
	} else if _, exists := e.accounts.find(number); exists {
		return rejected(CodeAccountExists)
	}
	name, _ := NormalizeName(c.Name)
	a := e.accounts.insert(Account{Number: number, Name: name, Balance: c.Amount, CreatedIndex: index, UpdatedIndex: index})
	e.totals.Accounts++
	e.totals.Balance += c.Amount
	return succeeded(a)
}

// assignNumber returns the next free fixed-width number. Numbers a client
// chose are skipped, so the result depends only on the log.
func (e *Engine) assignNumber() (string, bool) {
	for ; e.nextNum <= maxAssigned; e.nextNum++ {
		s := formatAssigned(e.nextNum)
		if _, taken := e.accounts.find(s); !taken {
			e.nextNum++
			return s, true
		}
	}
	return "", false
}

func (e *Engine) deposit(index uint64, c *Command) Result {
	a, code := e.lookupWithAmount(c)
	if code != CodeOK {
		return rejected(code)
	}
	if a.balance+c.Amount > MaxAmount || e.totals.Balance+c.Amount > MaxTotalBalance {
		return rejected(CodeLimitExceeded)
	}
	a.balance += c.Amount
	a.updated = index
	e.totals.Balance += c.Amount
	return succeeded(a)
}

func (e *Engine) withdraw(index uint64, c *Command) Result {
	a, code := e.lookupWithAmount(c)
	if code != CodeOK {
		return rejected(code)
	}
	if a.available() < c.Amount {
		return rejected(CodeInsufficientFunds)
	}
	a.balance -= c.Amount
	a.updated = index
	e.totals.Balance -= c.Amount
	return succeeded(a)
}

func (e *Engine) transfer(index uint64, c *Command) Result {
	if code := c.Check(); code != CodeOK {
		return rejected(code)
	}
	from, okFrom := e.accounts.change(c.Account)
	to, okTo := e.accounts.change(c.To)
	if !okFrom || !okTo {
		return rejected(CodeAccountNotFound)
	}
	if from.frozen || to.frozen {
		return rejected(CodeAccountFrozen)
	}
	if from.available() < c.Amount {
		return rejected(CodeInsufficientFunds)
	}
	if to.balance+c.Amount > MaxAmount {
		return rejected(CodeLimitExceeded)
	}
	from.balance -= c.Amount
	to.balance += c.Amount
	from.updated = index
	to.updated = index
	r := succeeded(from)
	r.add(to.account())
	return r
}

func (e *Engine) remove(c *Command) Result {
	if code := checkNumber(c.Account); code != CodeOK {
		return rejected(code)
	}
	a, ok := e.accounts.change(c.Account)
	if !ok {
		return rejected(CodeAccountNotFound)
	}
	if a.frozen { // a frozen account stays open until unfrozen
		return rejected(CodeAccountFrozen)
	}
	if a.balance != 0 { // open holds from it keep its balance above zero
		return rejected(CodeBalanceNotZero)
	}
	r := succeeded(a)
	e.accounts.remove(c.Account)
	e.totals.Accounts--
	return r
}

func (e *Engine) rename(index uint64, c *Command) Result {
	if code := c.Check(); code != CodeOK {
		return rejected(code)
	}
	a, ok := e.accounts.change(c.Account)
	if !ok {
		return rejected(CodeAccountNotFound)
	}
	name, _ := NormalizeName(c.Name)
	a.setName(name)
	a.updated = index
	return succeeded(a)
}

// lookupWithAmount validates a single-account money command and finds its
// account.
func (e *Engine) lookupWithAmount(c *Command) (*slot, Code) {
	if code := firstFailure(checkNumber(c.Account), checkAmount(c.Amount)); code != CodeOK {
		return nil, code
	}
	a, ok := e.accounts.change(c.Account)
	if !ok {
		return nil, CodeAccountNotFound
	}
	if a.frozen {
		return nil, CodeAccountFrozen
	}
	return a, CodeOK
}

func succeeded(a *slot) Result {
	r := Result{Code: CodeOK}
	r.add(a.account())
	return r
}
