import { ERR, KsaError } from '../errors.js'

// Terminal prompts on stderr (stdout carries the ExecCredential), answers from stdin. Secrets are
// read without echo when stdin is a terminal. End of input is an error, never a wait.

export class PromptAbortedError extends KsaError {
  constructor (message: string) {
    super(ERR.PROMPT, message)
    this.name = 'PromptAbortedError'
  }
}

export class Prompter {
  readonly #in: NodeJS.ReadStream
  readonly #out: NodeJS.WritableStream
  #buffer = ''
  #ended = false
  #waiter: (() => void) | undefined
  #listening = false

  constructor (input: NodeJS.ReadStream = process.stdin, output: NodeJS.WritableStream = process.stderr) {
    this.#in = input
    this.#out = output
  }

  #listen (): void {
    if (this.#listening) return
    this.#listening = true
    this.#in.setEncoding('utf8')
    this.#in.on('data', (chunk: string) => { this.#buffer += chunk; this.#wake() })
    this.#in.on('end', () => { this.#ended = true; this.#wake() })
    this.#in.on('error', () => { this.#ended = true; this.#wake() })
  }

  #wake (): void {
    const w = this.#waiter
    this.#waiter = undefined
    w?.()
  }

  async #next (): Promise<void> {
    await new Promise<void>(resolve => { this.#waiter = resolve; this.#in.resume() })
  }

  /** Reads one line; with `secret` and a terminal, in raw mode without echo. */
  async ask (label: string, secret = false): Promise<string> {
    this.#out.write(`Please enter ${label}: `)
    this.#listen()
    const raw = secret && this.#in.isTTY === true
    if (raw) this.#in.setRawMode(true)
    try {
      for (;;) {
        if (raw) {
          // In raw mode keys arrive one by one: handle Enter, Backspace, Ctrl-C and Ctrl-D.
          let i = 0
          let line = ''
          for (; i < this.#buffer.length; i++) {
            const c = this.#buffer[i] as string
            if (c === '\r' || c === '\n') {
              this.#buffer = this.#buffer.slice(i + 1)
              this.#out.write('\n')
              return line
            }
            if (c === '\u0003') throw new PromptAbortedError('interrupted')
            if (c === '\u0004' && line === '') throw new PromptAbortedError(`no ${label} given (end of input)`)
            if (c === '\u007f' || c === '\b') line = line.slice(0, -1)
            else line += c
          }
          // Keep what was typed so far until Enter comes.
          if (this.#ended) throw new PromptAbortedError(`no ${label} given (end of input)`)
          await this.#next()
          continue
        }
        const nl = this.#buffer.indexOf('\n')
        if (nl !== -1) {
          const line = this.#buffer.slice(0, nl).replace(/\r$/, '')
          this.#buffer = this.#buffer.slice(nl + 1)
          return line.trim()
        }
        if (this.#ended) {
          if (this.#buffer !== '') {
            const line = this.#buffer.trim()
            this.#buffer = ''
            return line
          }
          throw new PromptAbortedError(`no ${label} given (end of input)`)
        }
        await this.#next()
      }
    } finally {
      if (raw) this.#in.setRawMode(false)
      this.#in.pause()
    }
  }

  close (): void {
    this.#in.pause()
    this.#in.removeAllListeners('data')
  }
}
