package engine

// execute applies one command whose key is new. Every check happens before
// any change, so a rejected command has no effect.
func (e *Engine) execute(index uint64, c *Command) Result {
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
	}
	return rejected(CodeInvalid)
}

func (e *Engine) create(index uint64, c *Command) Result {
	if code := checkCreate(c); code != CodeOK {
		return rejected(code)
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
	} else if _, exists := e.byNumber[number]; exists {
		return rejected(CodeAccountExists)
	}
	name, _ := NormalizeName(c.Name)
	a := &Account{Number: number, Name: name, Balance: c.Amount, CreatedIndex: index, UpdatedIndex: index}
	e.byNumber[number] = a
	e.ordered.ReplaceOrInsert(a)
	e.totals.Accounts++
	e.totals.Balance += c.Amount
	return succeeded(a)
}

// assignNumber returns the next free fixed-width number. Numbers a client
// chose are skipped, so the result depends only on the log.
func (e *Engine) assignNumber() (string, bool) {
	for ; e.nextNum <= maxAssigned; e.nextNum++ {
		s := formatAssigned(e.nextNum)
		if _, taken := e.byNumber[s]; !taken {
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
	if a.Balance+c.Amount > MaxAmount || e.totals.Balance+c.Amount > MaxTotalBalance {
		return rejected(CodeLimitExceeded)
	}
	a.Balance += c.Amount
	a.UpdatedIndex = index
	e.totals.Balance += c.Amount
	return succeeded(a)
}

func (e *Engine) withdraw(index uint64, c *Command) Result {
	a, code := e.lookupWithAmount(c)
	if code != CodeOK {
		return rejected(code)
	}
	if a.Balance < c.Amount {
		return rejected(CodeInsufficientFunds)
	}
	a.Balance -= c.Amount
	a.UpdatedIndex = index
	e.totals.Balance -= c.Amount
	return succeeded(a)
}

func (e *Engine) transfer(index uint64, c *Command) Result {
	if code := c.Check(); code != CodeOK {
		return rejected(code)
	}
	from, okFrom := e.byNumber[c.Account]
	to, okTo := e.byNumber[c.To]
	if !okFrom || !okTo {
		return rejected(CodeAccountNotFound)
	}
	if from.Balance < c.Amount {
		return rejected(CodeInsufficientFunds)
	}
	if to.Balance+c.Amount > MaxAmount {
		return rejected(CodeLimitExceeded)
	}
	from.Balance -= c.Amount
	to.Balance += c.Amount
	from.UpdatedIndex = index
	to.UpdatedIndex = index
	r := succeeded(from)
	r.add(*to)
	return r
}

func (e *Engine) remove(c *Command) Result {
	if code := checkNumber(c.Account); code != CodeOK {
		return rejected(code)
	}
	a, ok := e.byNumber[c.Account]
	if !ok {
		return rejected(CodeAccountNotFound)
	}
	if a.Balance != 0 {
		return rejected(CodeBalanceNotZero)
	}
	delete(e.byNumber, a.Number)
	e.ordered.Delete(a)
	e.totals.Accounts--
	return succeeded(a)
}

func (e *Engine) rename(index uint64, c *Command) Result {
	if code := c.Check(); code != CodeOK {
		return rejected(code)
	}
	a, ok := e.byNumber[c.Account]
	if !ok {
		return rejected(CodeAccountNotFound)
	}
	a.Name, _ = NormalizeName(c.Name)
	a.UpdatedIndex = index
	return succeeded(a)
}

// lookupWithAmount validates a single-account money command and finds its
// account.
func (e *Engine) lookupWithAmount(c *Command) (*Account, Code) {
	if code := firstFailure(checkNumber(c.Account), checkAmount(c.Amount)); code != CodeOK {
		return nil, code
	}
	a, ok := e.byNumber[c.Account]
	if !ok {
		return nil, CodeAccountNotFound
	}
	return a, CodeOK
}

func succeeded(a *Account) Result {
	r := Result{Code: CodeOK}
	r.add(*a)
	return r
}
