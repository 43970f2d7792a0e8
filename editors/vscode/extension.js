// The VS Code client of `mlopsc lsp`: starts the server over stdio for .mlops files. Everything a
// user sees beyond highlighting (diagnostics, completion, hover, definition, rename, outline,
// formatting) comes from the server; see docs/editors.md.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("mlopsc");
  // TransportKind.stdio adds `--stdio` to the arguments: `mlopsc lsp --stdio`.
  const server = {
    command: config.get("server.command", "mlopsc"),
    args: config.get("server.args", ["lsp"]),
    transport: TransportKind.stdio,
  };
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "mlops" },
      { scheme: "untitled", language: "mlops" },
    ],
  };
  client = new LanguageClient("mlopsc", "mlopsc language server", server, clientOptions);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("mlopsc.server")) {
        vscode.window.showInformationMessage("mlopsc: reload the window to restart the language server.");
      }
    }),
  );
  return client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `mlopsc: could not start "${server.command} ${server.args.join(" ")}" (${error.message}). ` +
        "Install mlopsc with the lsp extra (pip install 'mlopsc[lsp]') or set mlopsc.server.command.",
    );
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
