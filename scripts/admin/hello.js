// AS:Description: Hello world script
// AS:CommandId: hello
// AS:Component: sess-man
//
// The seed's first script (section 11.14.1), in JavaScript: a window with a greeting.
const res = packet.commandResult(Command.DataType.result);
Command.addTitle(res, 'Hello World Script');
Command.addInstructions(res, 'Hello admin, how are you?');
return res;
