// AS:Description: Hello world script, asking for the name
// AS:CommandId: hello-name
// AS:Component: sess-man
//
// The seed's second script (section 11.14.1), in JavaScript: it asks for the administrator's
// name with a form, then greets by name. Run again with the submitted form, it finds the field.
const name = Command.getFieldValue(packet, 'name');

if (name == null) {
  const res = packet.commandResult(Command.DataType.form);
  Command.addTitle(res, 'Hello World Script');
  Command.addInstructions(res, 'Please provide some details');
  Command.addFieldValue(res, 'name', name ?? '', 'text-single', 'Your name');
  return res;
}

const res = packet.commandResult(Command.DataType.result);
Command.addTitle(res, 'Hello World Script');
Command.addInstructions(res, `Hello ${name}, how are you?`);
return res;
