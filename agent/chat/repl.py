"""The chat terminal: a prompt_toolkit loop with per-repository history, multi-line input and
completion of slash commands and file paths. What a message does is in commands.py."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings
from rich.console import Console
from rich.markup import escape

from treefix.agent.chat import session
from treefix.agent.chat.commands import COMMANDS, Chat
from treefix.agent.config import RunConfig

PATH_COMMANDS = ("/add", "/drop")


class ChatCompleter(Completer):
    """Slash commands at the start of a message; the repository's files anywhere else."""

    def __init__(self, repo: Path):
        self.repo = repo
        self._files: list[str] | None = None

    def files(self) -> list[str]:
        if self._files is None:
            out = subprocess.run(["git", "ls-files"], cwd=self.repo, capture_output=True, text=True).stdout
            self._files = out.splitlines()
        return self._files

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if text.startswith("/") and " " not in text:
            for name in COMMANDS:
                if name.startswith(text):
                    yield Completion(name, -len(text), display_meta=COMMANDS[name].split("   ")[-1].strip())
            return
        word = document.get_word_before_cursor(WORD=True)
        if len(word) < 2 and not text.startswith(PATH_COMMANDS):
            return
        for path in self.files():
            if path.startswith(word) or ("/" not in word and Path(path).name.startswith(word)):
                yield Completion(path, -len(word))


def _bindings() -> KeyBindings:
    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _(event) -> None:  # type: ignore[no-untyped-def]
        event.current_buffer.insert_text("\n")  # Esc+Enter (Alt+Enter): a new line in the message

    return keys


def run_chat(repo: Path, config: RunConfig, resume: bool, yes: bool, test_cmd: str | None, console: Console) -> int:
    state = session.load_last(repo) if resume else None
    if resume and state is None:
        console.print("[yellow]no earlier session here[/]: starting a new one")
    state = state or session.SessionState()
    if test_cmd:
        state.test_cmd = test_cmd
    history = FileHistory(str(session.chat_dir(repo) / "history"))
    prompt = PromptSession(history=history, completer=ChatCompleter(repo), key_bindings=_bindings(),
                           complete_while_typing=False, multiline=False)  # fmt: skip
    answer = PromptSession()

    chat = Chat(repo, console, config, state, yes=yes, ask_line=lambda q: answer.prompt(q))
    console.print(
        f"[bold]treefix chat[/] in {escape(str(repo))} · model {escape(config.model)} · "
        f"tests: {escape(state.test_cmd or '(ask)')}\n"
        "[dim]Describe a bug to fix, /ask a question, /help for commands. Ctrl-D quits.[/]",
        highlight=False,
    )
    if resume and state.requests:
        console.print(f"resumed session {state.id}: {len(state.requests)} requests, ${state.cost:.4f}", highlight=False)
        if state.current:
            chat.handle("/tree")
    try:
        while True:
            try:
                text = prompt.prompt("> ")
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line, as in a shell
            except EOFError:
                break
            try:
                if not chat.handle(text):
                    break
            except KeyboardInterrupt:  # Ctrl-C in a question or a slow command: back to the prompt
                console.print("[yellow]interrupted[/]")
    finally:
        chat.save()
        chat.close()
    console.print(f"session {state.id}: ${state.cost:.4f}. `treefix chat --resume` continues it.", highlight=False)
    return 0
