"""Tree-sitter queries: which nodes define a name and which use one, per language.

References are uses that say something about dependencies between files: calls, attribute and member
accesses, types, imported names and capitalised names (classes, constants). Plain lowercase
identifiers are left out because most of them are local variables, which would link every file that
has a `value` variable to every file that defines `value`.
"""

_JS_DEFS = """
(class_declaration name: (_) @name) @def.class
(class name: (_) @name) @def.class
(function_declaration name: (identifier) @name) @def.function
(generator_function_declaration name: (identifier) @name) @def.function
(method_definition name: (_) @name) @def.method
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @def.function
"""
_TS_DEFS = (
    _JS_DEFS
    + """
(abstract_class_declaration name: (_) @name) @def.class
(interface_declaration name: (_) @name) @def.interface
(type_alias_declaration name: (_) @name) @def.type
(enum_declaration name: (_) @name) @def.enum
(method_signature name: (_) @name) @def.method
(abstract_method_signature name: (_) @name) @def.method
(function_signature name: (_) @name) @def.function
(internal_module name: (_) @name) @def.module
"""
)
_JS_REFS = """
(call_expression function: (identifier) @ref)
(member_expression property: (property_identifier) @ref)
(new_expression constructor: (identifier) @ref)
(import_specifier name: (identifier) @ref)
((identifier) @ref (#match? @ref "^[A-Z]"))
"""
_TS_REFS = _JS_REFS + "(type_identifier) @ref\n"

DEFINITIONS: dict[str, str] = {
    "python": """
(class_definition name: (identifier) @name) @def.class
(function_definition name: (identifier) @name) @def.function
(module (expression_statement (assignment left: (identifier) @name) @def.constant))
""",
    "javascript": _JS_DEFS,
    "typescript": _TS_DEFS,
    "tsx": _TS_DEFS,
    "go": """
(function_declaration name: (identifier) @name) @def.function
(method_declaration name: (field_identifier) @name) @def.method
(type_spec name: (type_identifier) @name) @def.type
""",
    "rust": """
(struct_item name: (type_identifier) @name) @def.class
(enum_item name: (type_identifier) @name) @def.class
(union_item name: (type_identifier) @name) @def.class
(type_item name: (type_identifier) @name) @def.type
(trait_item name: (type_identifier) @name) @def.interface
(impl_item type: (_) @name) @def.impl
(function_item name: (identifier) @name) @def.function
(function_signature_item name: (identifier) @name) @def.function
(mod_item name: (identifier) @name) @def.module
(macro_definition name: (identifier) @name) @def.macro
""",
    "java": """
(class_declaration name: (identifier) @name) @def.class
(interface_declaration name: (identifier) @name) @def.interface
(enum_declaration name: (identifier) @name) @def.enum
(record_declaration name: (identifier) @name) @def.class
(method_declaration name: (identifier) @name) @def.method
(constructor_declaration name: (identifier) @name) @def.method
""",
}

REFERENCES: dict[str, str] = {
    "python": """
(call function: (identifier) @ref)
(attribute attribute: (identifier) @ref)
(decorator (identifier) @ref)
(import_from_statement name: (dotted_name (identifier) @ref))
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @ref)))
((identifier) @ref (#match? @ref "^_*[A-Z]"))
""",
    "javascript": _JS_REFS,
    "typescript": _TS_REFS,
    "tsx": _TS_REFS,
    "go": """
(call_expression function: (identifier) @ref)
(selector_expression field: (field_identifier) @ref)
(type_identifier) @ref
((identifier) @ref (#match? @ref "^[A-Z]"))
""",
    "rust": """
(call_expression function: (identifier) @ref)
(field_expression field: (field_identifier) @ref)
(scoped_identifier name: (identifier) @ref)
(macro_invocation macro: (identifier) @ref)
(type_identifier) @ref
""",
    "java": """
(method_invocation name: (identifier) @ref)
(field_access field: (identifier) @ref)
(type_identifier) @ref
((identifier) @ref (#match? @ref "^[A-Z]"))
""",
}
