"""The single `vla` entry point."""

from vla_stack import cli


def test_help_lists_subcommands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "sim demo" in out and "usage: vla" in out


def test_unknown_command_fails_with_the_list(capsys):
    assert cli.main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'no-such-command'" in err and "sim demo" in err
