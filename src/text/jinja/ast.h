// Syntax tree of a parsed template: expressions and statements, each with its template line.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/value.h"

namespace kvaudit::text::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral, kName, kList, kTuple, kDict, kGetAttr, kGetItem, kSlice, kCall, kFilter, kTest,
    kUnary, kBinary, kAnd, kOr, kNot, kTernary
  };
  Kind kind;
  int line = 0;
  Value literal;                    // kLiteral
  std::string name;                 // kName, kGetAttr attribute, kFilter/kTest name, kUnary/kBinary op
  std::vector<ExprPtr> items;       // kList/kTuple elements; kDict keys,values interleaved; call/filter/test args
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // kCall/kFilter/kTest
  ExprPtr a, b, c;                  // operands: object/left/cond; index/right/then; else / slice parts
  ExprPtr slice_step;
  bool negated = false;             // kTest: "is not"
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kBreak, kContinue, kMacro };
  Kind kind;
  int line = 0;
  std::string text;                               // kText; kSetBlock/kMacro name
  ExprPtr expr;                                   // kOutput; kFor iterable; kSet value
  std::vector<std::pair<ExprPtr, Body>> branches; // kIf: (condition, body)...
  Body body, else_body;                           // kFor / kIf else / kSetBlock / kMacro
  std::vector<std::string> targets;               // kFor loop variables; kSet names; kMacro params
  ExprPtr target_obj;                             // kSet "ns.attr": the object (attribute in text)
  ExprPtr filter;                                 // kFor "if" filter
  std::vector<ExprPtr> defaults;                  // kMacro parameter defaults (null if none)
};

}  // namespace kvaudit::text::jinja
